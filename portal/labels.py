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

from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from portal import formatting
from portal.tenancy import Role

# The counters of the wire contract (devices/protocol/telemetry-v1.md).
COUNTERS = {
    "impressions.total": _("Impressions"),
    "impressions.mono": _("Mono impressions"),
    "impressions.color": _("Colour impressions"),
    "sheets.total": _("Sheets"),
    "media.area": _("Media area"),
    "media.length": _("Media length"),
    "ink.used": _("Ink used"),
    "ink.used.nongenuine": _("Non-genuine ink used"),
    "scan.area": _("Scan area"),
    "scan.pages": _("Scanned pages"),
    "copy.impressions": _("Copy impressions"),
    "jobs.total": _("Jobs"),
}
# What a counter counts, by its name: senders do not always say (or say "impressions" for
# sheets), and the page should not repeat their mistake.
COUNTER_UNITS = {
    "impressions.total": _("impressions"),
    "impressions.mono": _("impressions"),
    "impressions.color": _("impressions"),
    "sheets.total": _("sheets"),
    "media.area": "m²",
    "media.length": "m",
    "ink.used": "ml",
    "ink.used.nongenuine": "ml",
    "scan.area": "m²",
    "scan.pages": _("pages"),
    "copy.impressions": _("impressions"),
    "jobs.total": _("jobs"),
}
UNITS = {"m2": "m²", "percent": "%"}

SUPPLY_KINDS = {
    "toner": _("toner"),
    "ink": _("ink"),
    "drum": _("drum"),
    "printhead": _("printhead"),
    "waste": _("waste container"),
    "maintenance": _("maintenance kit"),
    "fuser": _("fuser"),
    "staples": _("staples"),
    "media": _("media"),
}

# RFC 3805 alert codes (the collector sends "<group>.<code>") and the portal's own.
ALERTS = {
    "device.offline": _("The printer stopped reporting"),
    "media.jam": _("Paper jam"),
    "jam": _("Paper jam"),
    "cover_open": _("A cover is open"),
    "door_open": _("A door is open"),
    "interlock_open": _("An interlock is open"),
    "subunit_missing": _("A part is missing"),
    "subunit_life_almost_over": _("A part is nearly worn out"),
    "subunit_life_over": _("A part is worn out"),
    "subunit_almost_empty": _("A supply is almost empty"),
    "subunit_empty": _("A supply is empty"),
    "subunit_almost_full": _("A container is almost full"),
    "subunit_full": _("A container is full"),
    "subunit_offline": _("A part is offline"),
    "subunit_warming_up": _("Warming up"),
    "subunit_recoverable_failure": _("A part failed and recovered"),
    "subunit_unrecoverable_failure": _("A part failed"),
    "input_media_tray_missing": _("A paper tray is missing"),
    "input_media_supply_low": _("Paper is running low"),
    "input_media_supply_empty": _("Out of paper"),
    "input_media_change_request": _("Load different paper"),
    "input_manual_input_request": _("Load paper in the manual feed"),
    "output_media_tray_missing": _("The output tray is missing"),
    "output_media_tray_almost_full": _("The output tray is almost full"),
    "output_media_tray_full": _("The output tray is full"),
    "marker_fuser_under_temperature": _("The fuser is too cold"),
    "marker_fuser_over_temperature": _("The fuser is too hot"),
    "marker_toner_empty": _("Toner is empty"),
    "marker_ink_empty": _("Ink is empty"),
    "marker_toner_almost_empty": _("Toner is almost empty"),
    "marker_ink_almost_empty": _("Ink is almost empty"),
    "marker_waste_toner_receptacle_almost_full": _("The waste toner container is almost full"),
    "marker_waste_ink_receptacle_almost_full": _("The waste ink container is almost full"),
    "marker_waste_toner_receptacle_full": _("The waste toner container is full"),
    "marker_waste_ink_receptacle_full": _("The waste ink container is full"),
    "marker_opc_life_almost_over": _("The drum is nearly worn out"),
    "marker_opc_life_over": _("The drum is worn out"),
}

# Why the portal refused a sender's signature (devices.services.credential_check).
AUTH_FAILURES = {
    "bad_signature": _("The signature did not match: the sender has another secret"),
    "stale_timestamp": _("The sender's clock is off by more than five minutes"),
    "revoked": _("The credential is revoked"),
}

FLAGS = {
    "reset": _("counter reset"),
    "board_swap": _("board swapped"),
    "first_reading_in_window": _("first reading inside the period"),
    "no_readings": _("no readings"),
    "carried_forward": _("carried forward"),
    "estimated": _("estimated"),
    "estimate_offset": _("estimate corrected"),
    "no_rate": _("no price"),
    "prorated": _("prorated"),
}


def words(code: str) -> str:
    """A code as words, for codes without a label: "marker_toner_low" -> "Marker toner low"."""
    text = re.sub(r"[._\-]+", " ", str(code or "")).strip()
    return text[:1].upper() + text[1:]


def unit_label(unit: str) -> str:
    return UNITS.get(unit, unit)


def counter_label(name: str, media_type: str = "", color: str = "") -> str:
    """Colour impressions; Ink used, cyan; Media area, Coated Paper."""
    label = str(COUNTERS.get(name) or words(name))
    qualifiers = ", ".join(q for q in (media_type, color) if q)
    return f"{label}, {qualifiers}" if qualifiers else label


def counter_unit(name: str, reported_unit: str = "") -> str:
    return str(COUNTER_UNITS.get(name) or unit_label(reported_unit))


def supply_kind_label(kind: str) -> str:
    return str(SUPPLY_KINDS.get(kind) or words(kind).lower())


def supply_key_label(supply_key: str) -> str:
    """A supply named only by its key: "ink-matte-black" -> "Matte black ink"."""
    kind, _, colour = str(supply_key or "").partition("-")
    if kind in SUPPLY_KINDS and colour:
        # Translators: a supply by colour and kind, "Matte black ink".
        return gettext("%(colour)s %(kind)s") % {
            "colour": words(colour),
            "kind": SUPPLY_KINDS[kind],
        }
    return words(supply_key)


def supply_label(supply: Any) -> str:
    """The printer's own description of the supply, else words from its colour and kind."""
    description = getattr(supply, "description", "") or ""
    if description:
        return str(description)
    color, kind = getattr(supply, "color", "") or "", getattr(supply, "kind", "") or ""
    if color and kind:
        return gettext("%(colour)s %(kind)s") % {
            "colour": color.capitalize(),
            "kind": supply_kind_label(kind),
        }
    return supply_key_label(getattr(supply, "supply_key", "") or kind)


def alert_label(code: str, description: str = "") -> str:
    """What an alert says: the printer's description, else the code's words."""
    if description:
        return description
    code = str(code or "")
    if code.startswith("supply.low."):
        return gettext("%(supply)s is low") % {
            "supply": supply_key_label(code.removeprefix("supply.low."))
        }
    if code in ALERTS:
        return str(ALERTS[code])
    last = code.rsplit(".", 1)[-1]
    return str(ALERTS.get(last) or words(last))


def device_name(device: Any) -> str:
    """What pages and documents call a printer: its own name, else its model, else its serial."""
    return str(device.name or device.model or device.serial)


def flag_label(flag: str) -> str:
    return str(FLAGS.get(flag) or words(flag).lower())


def auth_failure_label(reason: str) -> str:
    return str(AUTH_FAILURES.get(reason) or words(reason))


def role_label(role: str) -> str:
    try:
        return str(Role(role).label)
    except ValueError:
        return words(role)


# --- Audit trail --------------------------------------------------------------------------------

AUDIT_GROUPS = {
    "customer": _("Customers"),
    "site": _("Sites"),
    "invitation": _("Invitations"),
    "membership": _("Users and roles"),
    "api_token": _("API tokens"),
    "webhook": _("Webhooks"),
    "credential": _("Collectors and printer credentials"),
    "contract": _("Contracts"),
    "plan": _("Price plans"),
    "statement": _("Statements"),
    "order": _("Orders"),
    "product": _("Catalog"),
    "policy": _("Reorder policies"),
    "operator": _("Operator access"),
    "admin": _("Operator admin pages"),
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
        return gettext("its details")
    if len(names) == 1:
        return names[0]
    return gettext("%(names)s and %(last)s") % {"names": ", ".join(names[:-1]), "last": names[-1]}


def _day(value: Any) -> str:
    import datetime as dt

    try:
        return formatting.date(dt.date.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _order_number(object_id: str) -> str:
    return f"ORD-{int(object_id):06d}" if str(object_id).isdigit() else gettext("an order")


def audit_sentence(action: str, detail: Mapping[str, Any] | None, object_id: str = "") -> str:
    """One audit row as a sentence: "Added printer S1X… to contract PPU-2026-001 from 1.10.2026"."""
    d: Mapping[str, Any] = detail or {}
    get = d.get

    def role(key: str) -> str:
        return role_label(get(key, "")).lower()

    def count(key: str) -> int:
        try:
            return int(get(key, 0) or 0)
        except (TypeError, ValueError):
            return 0

    sentences: dict[str, Any] = {
        "reseller.create": lambda: gettext("Created the reseller."),
        "reseller.update": lambda: (
            gettext("Changed the reseller's settings and replaced the logo.")
            if get("logo") == "replaced"
            else gettext("Changed the reseller's settings.")
        ),
        "customer.create": lambda: (
            gettext("Added the customer %(name)s.") % {"name": _quoted(get("name", ""))}
        ),
        "customer.update": lambda: (
            gettext("Changed a customer's %(fields)s.") % {"fields": _fields(d)}
        ),
        "site.create": lambda: (
            gettext("Added the site %(name)s.") % {"name": _quoted(get("name", ""))}
        ),
        "site.update": lambda: gettext("Changed a site's %(fields)s.") % {"fields": _fields(d)},
        "invitation.create": lambda: (
            gettext("Invited %(email)s as %(role)s.")
            % {"email": get("email", gettext("someone")), "role": role("role")}
        ),
        "invitation.revoke": lambda: gettext("Revoked an invitation."),
        "invitation.accept": lambda: (
            gettext("%(email)s accepted an invitation as %(role)s.")
            % {"email": get("email", gettext("Someone")), "role": role("role")}
        ),
        "membership.role": lambda: (
            gettext("Changed a user's role from %(from)s to %(to)s.")
            % {"from": role("from"), "to": role("to")}
        ),
        "membership.remove": lambda: (
            gettext("Removed %(email)s (%(role)s).")
            % {"email": get("email", gettext("a user")), "role": role("role")}
        ),
        "api_token.create": lambda: (
            gettext("Created the API token %(name)s.") % {"name": _quoted(get("name", ""))}
        ),
        "api_token.revoke": lambda: gettext("Revoked an API token."),
        "webhook.create": lambda: (
            gettext("Added the webhook endpoint %(url)s.") % {"url": get("url", "")}
        ),
        "webhook.update": lambda: (
            gettext("Changed a webhook endpoint's %(fields)s.") % {"fields": _fields(d)}
        ),
        "webhook.rotate": lambda: gettext("Made a new signing secret for a webhook endpoint."),
        "webhook.redeliver": lambda: (
            gettext("Sent the %(event)s event of a webhook again.") % {"event": get("event", "")}
        ),
        "credential.create": lambda: (
            gettext("Created the %(kind)s credential %(name)s.")
            % {"kind": words(get("kind", "")).lower(), "name": _quoted(get("name", ""))}
        ),
        "credential.rotate": lambda: (
            ngettext(
                "Issued a new secret for a credential; the old one works for %(count)s more hour.",
                "Issued a new secret for a credential; the old one works for %(count)s more hours.",
                count("grace_hours"),
            )
            % {"count": get("grace_hours", "?")}
        ),
        "credential.revoke": lambda: gettext("Revoked a credential."),
        "collector.configure": lambda: (
            gettext(
                "Changed a collector's configuration: polls every %(poll)s minutes, "
                "uploads every %(upload)s minutes."
            )
            % {
                "poll": get("poll_interval_minutes", "?"),
                "upload": get("upload_interval_minutes", "?"),
            }
        ),
        "telemetry_policy.update": lambda: (
            gettext(
                "Changed what printers may report of their jobs: "
                "job names %(job_names)s, user names %(user_names)s."
            )
            % {
                "job_names": words(get("job_names", "")).lower(),
                "user_names": words(get("user_names", "")).lower(),
            }
        ),
        "plan.create": lambda: (
            gettext("Created the price plan %(name)s.") % {"name": _quoted(get("name", ""))}
        ),
        "plan.revise": lambda: (
            gettext("Revised a price plan: version %(version)s applies from %(day)s.")
            % {"version": get("version", "?"), "day": _day(get("effective_from", ""))}
        ),
        "contract.create": lambda: (
            gettext("Created the contract %(ref)s.") % {"ref": get("ref", "")}
        ),
        "contract.update": lambda: (
            gettext("Changed a contract's %(fields)s.") % {"fields": _fields(d)}
        ),
        "contract.device_add": lambda: (
            gettext("Added the printer %(device)s to a contract from %(day)s.")
            % {"device": get("device", ""), "day": _day(get("joined_on", ""))}
        ),
        "contract.device_remove": lambda: (
            gettext("Took the printer %(device)s off a contract after %(day)s.")
            % {"device": get("device", ""), "day": _day(get("left_on", ""))}
        ),
        "counter.correct": lambda: (
            gettext("Corrected a printer's %(counter)s reading to %(value)s.")
            % {
                "counter": counter_label(get("counter", "")),
                "value": formatting.number(get("value")),
            }
        ),
        "statement.finalise": lambda: (
            gettext("Finalised statement No. %(number)s.") % {"number": get("number", "")}
        ),
        "statement.adjust": lambda: (
            gettext("Drafted an adjustment to statement No. %(number)s.")
            % {"number": get("adjusts", "")}
        ),
        "order.create": lambda: (
            ngettext(
                "Placed order %(order)s with %(count)s line.",
                "Placed order %(order)s with %(count)s lines.",
                count("lines"),
            )
            % {"order": _order_number(object_id), "count": get("lines", 0)}
        ),
        "order.transition": lambda: (
            gettext("Moved order %(order)s from %(from)s to %(to)s.")
            % {
                "order": _order_number(object_id),
                "from": _status(get("from", "")),
                "to": _status(get("to", "")),
            }
        ),
        "product.create": lambda: (
            gettext("Added %(sku)s to the catalog.") % {"sku": get("sku", gettext("a product"))}
        ),
        "product.update": lambda: (
            gettext("Changed the catalog product %(sku)s.") % {"sku": get("sku", "")}
        ),
        "mapping.remember": lambda: (
            gettext("Matched part %(part)s to the catalog product %(sku)s.")
            % {"part": get("part_number", ""), "sku": get("sku", "")}
        ),
        "policy.set": lambda: (
            (
                ngettext(
                    "Set a reorder policy: reorder at %(threshold)s, "
                    "%(count)s day lead time, %(mode)s.",
                    "Set a reorder policy: reorder at %(threshold)s, "
                    "%(count)s days lead time, %(mode)s.",
                    count("lead_time_days"),
                )
                if not get("device_id")
                else ngettext(
                    "Set a reorder policy for one printer: reorder at %(threshold)s, "
                    "%(count)s day lead time, %(mode)s.",
                    "Set a reorder policy for one printer: reorder at %(threshold)s, "
                    "%(count)s days lead time, %(mode)s.",
                    count("lead_time_days"),
                )
            )
            % {
                "threshold": formatting.percent(get("threshold_percent")),
                "count": get("lead_time_days", "?"),
                "mode": _policy_mode(get("mode", "")),
            }
        ),
        "policy.delete": lambda: gettext("Removed a printer's own reorder policy."),
        "operator.access": lambda: (
            gettext("A platform operator opened this page (%(method)s).")
            % {"method": get("method")}
            if get("method") not in (None, "GET")
            else gettext("A platform operator opened this page.")
        ),
        "admin.list": lambda: (
            ngettext(
                "A platform operator listed %(count)s row in the admin.",
                "A platform operator listed %(count)s rows in the admin.",
                count("rows"),
            )
            % {"count": get("rows", "?")}
        ),
        "admin.view": lambda: gettext("A platform operator opened a record in the admin."),
        "admin.change": lambda: gettext("A platform operator changed a record in the admin."),
        "admin.add": lambda: gettext("A platform operator added a record in the admin."),
        "admin.delete": lambda: (
            ngettext(
                "A platform operator deleted %(count)s row in the admin.",
                "A platform operator deleted %(count)s rows in the admin.",
                count("rows"),
            )
            % {"count": get("rows", "?")}
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
