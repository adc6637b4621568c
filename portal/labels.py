"""The words people read for the codes the portal stores: counters, supplies, alerts, statement
flags and audit actions. Pages, emails and documents name things through here; the API and
machine files keep the codes (they are the contract).

Codes the portal does not know yet (a new counter, a vendor's alert) still read as words: the
code is split at its dots, dashes and underscores, never shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.template.defaultfilters import pluralize

from portal import formatting
from portal.tenancy import Role

# The counters of the wire contract (devices/protocol/telemetry-v1.md).
COUNTERS = {
    "impressions.total": "Impressions",
    "impressions.mono": "Mono impressions",
    "impressions.color": "Colour impressions",
    "sheets.total": "Sheets",
    "media.area": "Media area",
    "media.length": "Media length",
    "ink.used": "Ink used",
    "ink.used.nongenuine": "Non-genuine ink used",
    "scan.area": "Scan area",
    "scan.pages": "Scanned pages",
    "copy.impressions": "Copy impressions",
    "jobs.total": "Jobs",
}
# What a counter counts, by its name: senders do not always say (or say "impressions" for
# sheets), and the page should not repeat their mistake.
COUNTER_UNITS = {
    "impressions.total": "impressions",
    "impressions.mono": "impressions",
    "impressions.color": "impressions",
    "sheets.total": "sheets",
    "media.area": "m²",
    "media.length": "m",
    "ink.used": "ml",
    "ink.used.nongenuine": "ml",
    "scan.area": "m²",
    "scan.pages": "pages",
    "copy.impressions": "impressions",
    "jobs.total": "jobs",
}
UNITS = {"m2": "m²", "percent": "%"}

SUPPLY_KINDS = {
    "toner": "toner",
    "ink": "ink",
    "drum": "drum",
    "printhead": "printhead",
    "waste": "waste container",
    "maintenance": "maintenance kit",
    "fuser": "fuser",
    "staples": "staples",
    "media": "media",
}

# RFC 3805 alert codes (the collector sends "<group>.<code>") and the portal's own.
ALERTS = {
    "device.offline": "The printer stopped reporting",
    "media.jam": "Paper jam",
    "jam": "Paper jam",
    "cover_open": "A cover is open",
    "door_open": "A door is open",
    "interlock_open": "An interlock is open",
    "subunit_missing": "A part is missing",
    "subunit_life_almost_over": "A part is nearly worn out",
    "subunit_life_over": "A part is worn out",
    "subunit_almost_empty": "A supply is almost empty",
    "subunit_empty": "A supply is empty",
    "subunit_almost_full": "A container is almost full",
    "subunit_full": "A container is full",
    "subunit_offline": "A part is offline",
    "subunit_warming_up": "Warming up",
    "subunit_recoverable_failure": "A part failed and recovered",
    "subunit_unrecoverable_failure": "A part failed",
    "input_media_tray_missing": "A paper tray is missing",
    "input_media_supply_low": "Paper is running low",
    "input_media_supply_empty": "Out of paper",
    "input_media_change_request": "Load different paper",
    "input_manual_input_request": "Load paper in the manual feed",
    "output_media_tray_missing": "The output tray is missing",
    "output_media_tray_almost_full": "The output tray is almost full",
    "output_media_tray_full": "The output tray is full",
    "marker_fuser_under_temperature": "The fuser is too cold",
    "marker_fuser_over_temperature": "The fuser is too hot",
    "marker_toner_empty": "Toner is empty",
    "marker_ink_empty": "Ink is empty",
    "marker_toner_almost_empty": "Toner is almost empty",
    "marker_ink_almost_empty": "Ink is almost empty",
    "marker_waste_toner_receptacle_almost_full": "The waste toner container is almost full",
    "marker_waste_ink_receptacle_almost_full": "The waste ink container is almost full",
    "marker_waste_toner_receptacle_full": "The waste toner container is full",
    "marker_waste_ink_receptacle_full": "The waste ink container is full",
    "marker_opc_life_almost_over": "The drum is nearly worn out",
    "marker_opc_life_over": "The drum is worn out",
}

# Why the portal refused a sender's signature (devices.services.credential_check).
AUTH_FAILURES = {
    "bad_signature": "The signature did not match: the sender has another secret",
    "stale_timestamp": "The sender's clock is off by more than five minutes",
    "revoked": "The credential is revoked",
}

FLAGS = {
    "reset": "counter reset",
    "board_swap": "board swapped",
    "first_reading_in_window": "first reading inside the period",
    "no_readings": "no readings",
    "carried_forward": "carried forward",
    "estimated": "estimated",
    "estimate_offset": "estimate corrected",
    "no_rate": "no price",
    "prorated": "prorated",
}


def words(code: str) -> str:
    """A code as words, for codes without a label: "marker_toner_low" -> "Marker toner low"."""
    text = re.sub(r"[._\-]+", " ", str(code or "")).strip()
    return text[:1].upper() + text[1:]


def unit_label(unit: str) -> str:
    return UNITS.get(unit, unit)


def counter_label(name: str, media_type: str = "", color: str = "") -> str:
    """Colour impressions; Ink used, cyan; Media area, Coated Paper."""
    label = COUNTERS.get(name) or words(name)
    qualifiers = ", ".join(q for q in (media_type, color) if q)
    return f"{label}, {qualifiers}" if qualifiers else label


def counter_unit(name: str, reported_unit: str = "") -> str:
    return COUNTER_UNITS.get(name) or unit_label(reported_unit)


def supply_kind_label(kind: str) -> str:
    return SUPPLY_KINDS.get(kind, words(kind).lower())


def supply_key_label(supply_key: str) -> str:
    """A supply named only by its key: "ink-matte-black" -> "Matte black ink"."""
    kind, _, colour = str(supply_key or "").partition("-")
    if kind in SUPPLY_KINDS and colour:
        return f"{words(colour)} {SUPPLY_KINDS[kind]}"
    return words(supply_key)


def supply_label(supply: Any) -> str:
    """The printer's own description of the supply, else words from its colour and kind."""
    description = getattr(supply, "description", "") or ""
    if description:
        return str(description)
    color, kind = getattr(supply, "color", "") or "", getattr(supply, "kind", "") or ""
    if color and kind:
        return f"{color.capitalize()} {supply_kind_label(kind)}"
    return supply_key_label(getattr(supply, "supply_key", "") or kind)


def alert_label(code: str, description: str = "") -> str:
    """What an alert says: the printer's description, else the code's words."""
    if description:
        return description
    code = str(code or "")
    if code.startswith("supply.low."):
        return f"{supply_key_label(code.removeprefix('supply.low.'))} is low"
    if code in ALERTS:
        return ALERTS[code]
    last = code.rsplit(".", 1)[-1]
    return ALERTS.get(last) or words(last)


def device_name(device: Any) -> str:
    """What pages and documents call a printer: its own name, else its model, else its serial."""
    return str(device.name or device.model or device.serial)


def flag_label(flag: str) -> str:
    return FLAGS.get(flag, words(flag).lower())


def auth_failure_label(reason: str) -> str:
    return AUTH_FAILURES.get(reason, words(reason))


def role_label(role: str) -> str:
    try:
        return str(Role(role).label)
    except ValueError:
        return words(role)


# --- Audit trail --------------------------------------------------------------------------------

AUDIT_GROUPS = {
    "customer": "Customers",
    "site": "Sites",
    "invitation": "Invitations",
    "membership": "Users and roles",
    "api_token": "API tokens",
    "webhook": "Webhooks",
    "credential": "Collectors and printer credentials",
    "contract": "Contracts",
    "plan": "Price plans",
    "statement": "Statements",
    "order": "Orders",
    "product": "Catalog",
    "policy": "Reorder policies",
    "operator": "Operator access",
    "admin": "Operator admin pages",
}


def _quoted(value: Any) -> str:
    return f"“{value}”"


def order_status_label(value: Any) -> str:
    """An order's status as the order pages name it: "pending_approval" -> "Awaiting approval"."""
    from orders.models import Order

    try:
        return str(Order.Status(value).label)
    except ValueError:
        return words(value)


def _status(value: Any) -> str:
    return order_status_label(value).lower()


def _fields(detail: Mapping[str, Any]) -> str:
    names = [words(k).lower() for k in detail]
    if not names:
        return "its details"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _day(value: Any) -> str:
    import datetime as dt

    try:
        return formatting.date(dt.date.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _order_number(object_id: str) -> str:
    return f"ORD-{int(object_id):06d}" if str(object_id).isdigit() else "an order"


def audit_sentence(action: str, detail: Mapping[str, Any] | None, object_id: str = "") -> str:
    """One audit row as a sentence: "Added printer S1X… to contract PPU-2026-001 from 1.10.2026"."""
    d: Mapping[str, Any] = detail or {}
    get = d.get
    sentences: dict[str, Any] = {
        "reseller.create": lambda: "Created the reseller.",
        "reseller.update": lambda: (
            "Changed the reseller's settings"
            + (" and replaced the logo." if get("logo") == "replaced" else ".")
        ),
        "customer.create": lambda: f"Added the customer {_quoted(get('name', ''))}.",
        "customer.update": lambda: f"Changed a customer's {_fields(d)}.",
        "site.create": lambda: f"Added the site {_quoted(get('name', ''))}.",
        "site.update": lambda: f"Changed a site's {_fields(d)}.",
        "invitation.create": lambda: (
            f"Invited {get('email', 'someone')} as {role_label(get('role', '')).lower()}."
        ),
        "invitation.revoke": lambda: "Revoked an invitation.",
        "invitation.accept": lambda: (
            f"{get('email', 'Someone')} accepted an invitation as "
            f"{role_label(get('role', '')).lower()}."
        ),
        "membership.role": lambda: (
            f"Changed a user's role from "
            f"{role_label(get('from', '')).lower()} to {role_label(get('to', '')).lower()}."
        ),
        "membership.remove": lambda: (
            f"Removed {get('email', 'a user')} ({role_label(get('role', '')).lower()})."
        ),
        "api_token.create": lambda: f"Created the API token {_quoted(get('name', ''))}.",
        "api_token.revoke": lambda: "Revoked an API token.",
        "webhook.create": lambda: f"Added the webhook endpoint {get('url', '')}.",
        "webhook.update": lambda: f"Changed a webhook endpoint's {_fields(d)}.",
        "webhook.rotate": lambda: "Made a new signing secret for a webhook endpoint.",
        "webhook.redeliver": lambda: f"Sent the {get('event', '')} event of a webhook again.",
        "credential.create": lambda: (
            f"Created the {words(get('kind', '')).lower()} credential {_quoted(get('name', ''))}."
        ),
        "credential.rotate": lambda: (
            "Issued a new secret for a credential; the old one works "
            f"for {get('grace_hours', '?')} more hour{pluralize(get('grace_hours', 0))}."
        ),
        "credential.revoke": lambda: "Revoked a credential.",
        "collector.configure": lambda: (
            "Changed a collector's configuration: polls every "
            f"{get('poll_interval_minutes', '?')} minutes, uploads every "
            f"{get('upload_interval_minutes', '?')} minutes."
        ),
        "telemetry_policy.update": lambda: (
            "Changed what printers may report of their jobs: "
            f"job names {words(get('job_names', '')).lower()}, "
            f"user names {words(get('user_names', '')).lower()}."
        ),
        "plan.create": lambda: f"Created the price plan {_quoted(get('name', ''))}.",
        "plan.revise": lambda: (
            f"Revised a price plan: version {get('version', '?')} applies "
            f"from {_day(get('effective_from', ''))}."
        ),
        "contract.create": lambda: f"Created the contract {get('ref', '')}.",
        "contract.update": lambda: f"Changed a contract's {_fields(d)}.",
        "contract.device_add": lambda: (
            f"Added the printer {get('device', '')} to a contract "
            f"from {_day(get('joined_on', ''))}."
        ),
        "contract.device_remove": lambda: (
            f"Took the printer {get('device', '')} off a contract after {_day(get('left_on', ''))}."
        ),
        "counter.correct": lambda: (
            f"Corrected a printer's {counter_label(get('counter', ''))} "
            f"reading to {formatting.number(get('value'))}."
        ),
        "statement.finalise": lambda: f"Finalised statement No. {get('number', '')}.",
        "statement.adjust": lambda: f"Drafted an adjustment to statement No. {get('adjusts', '')}.",
        "order.create": lambda: (
            f"Placed order {_order_number(object_id)} with "
            f"{get('lines', 0)} line{pluralize(get('lines', 0))}."
        ),
        "order.transition": lambda: (
            f"Moved order {_order_number(object_id)} from "
            f"{_status(get('from', ''))} to {_status(get('to', ''))}."
        ),
        "product.create": lambda: f"Added {get('sku', 'a product')} to the catalog.",
        "product.update": lambda: f"Changed the catalog product {get('sku', '')}.",
        "mapping.remember": lambda: (
            f"Matched part {get('part_number', '')} to the catalog product {get('sku', '')}."
        ),
        "policy.set": lambda: (
            "Set a reorder policy"
            + (" for one printer" if get("device_id") else "")
            + f": reorder at {formatting.percent(get('threshold_percent'))}, "
            f"{get('lead_time_days', '?')} day{pluralize(get('lead_time_days', 0))} lead time, "
            f"{_policy_mode(get('mode', ''))}."
        ),
        "policy.delete": lambda: "Removed a printer's own reorder policy.",
        "operator.access": lambda: (
            "A platform operator opened this page"
            + (f" ({get('method')})" if get("method") not in (None, "GET") else "")
            + "."
        ),
        "admin.list": lambda: (
            f"A platform operator listed {get('rows', 'some')} "
            f"row{pluralize(get('rows', 0))} in the admin."
        ),
        "admin.view": lambda: "A platform operator opened a record in the admin.",
        "admin.change": lambda: "A platform operator changed a record in the admin.",
        "admin.add": lambda: "A platform operator added a record in the admin.",
        "admin.delete": lambda: (
            f"A platform operator deleted {get('rows', 'some')} "
            f"row{pluralize(get('rows', 0))} in the admin."
        ),
    }
    make = sentences.get(action)
    if make is None:
        return f"{words(action)}."
    return str(make())


def _policy_mode(mode: str) -> str:
    from orders.models import ReorderPolicy

    try:
        return str(ReorderPolicy.Mode(mode).label).lower()
    except ValueError:
        return words(mode).lower()
