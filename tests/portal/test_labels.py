"""Words people use (portal/labels.py): pages and emails name counters, supplies, alerts and
audit actions in words, never by the codes the portal stores; every chart series has a look of
its own. Through HTTP as alice (reseller admin), and the alert email as sent."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from django.core import mail

from accounts.models import AuditEvent
from devices import services as device_services
from orders import email_services
from portal import formatting, labels
from tests.conftest import Tenant
from tests.factories import (
    AlertFactory,
    CounterReadingFactory,
    DeviceFactory,
    DeviceStateFactory,
    SupplyFactory,
)

pytestmark = pytest.mark.django_db

# Codes that must never reach a person.
CODES = re.compile(
    r"\b(?:supply\.low\.|impressions\.|sheets\.total|contract\.device_add|media\.jam)"
)


def test_codes_become_words() -> None:
    assert labels.alert_label("supply.low.ink-matte-black") == "Matte black ink is low"
    assert labels.alert_label("marker_supplies.marker_toner_almost_empty") == (
        "Toner is almost empty"
    )
    assert labels.alert_label("finisher.vendor_thing_42") == "Vendor thing 42"
    assert labels.alert_label("media.jam", "Jam in tray 2") == "Jam in tray 2"
    assert labels.counter_label("impressions.color") == "Colour impressions"
    assert labels.counter_label("ink.used", color="cyan") == "Ink used, cyan"
    assert labels.counter_unit("sheets.total", "impressions") == "sheets"
    assert labels.supply_key_label("waste") == "Waste"
    assert labels.flag_label("carried_forward") == "carried forward"


def test_audit_rows_read_as_sentences() -> None:
    with formatting.override(locale="en-gb"):
        added = labels.audit_sentence(
            "contract.device_add", {"device": "S4X004000002", "joined_on": "2026-10-01"}
        )
        moved = labels.audit_sentence(
            "order.transition", {"from": "pending_approval", "to": "rejected"}, "8"
        )
        created = labels.audit_sentence("order.create", {"lines": 1}, "7")
        unknown = labels.audit_sentence("widget.frobnicate", {})

    assert added == "Added the printer S4X004000002 to a contract from 01/10/2026."
    assert moved == "Moved order ORD-000008 from awaiting approval to rejected."
    assert created == "Placed order ORD-000007 with 1 line."
    assert unknown == "Widget frobnicate."


@pytest.fixture
def device(tenant: Tenant) -> Any:
    device = DeviceFactory(site=tenant.site, serial="WORDS-1", model="HP DesignJet T830")
    DeviceStateFactory(device=device)
    return device


def test_alert_pages_show_what_happened_not_the_code(device: Any, alice: Any, login: Any) -> None:
    AlertFactory(device=device, code="supply.low.ink-matte-black", description="")
    AlertFactory(device=device, code="media.jam", description="Paper jam", severity="critical")
    client = login(alice)

    for path in ("/alerts/", f"/devices/{device.pk}/"):
        body = client.get(path).content.decode()
        assert "Matte black ink is low" in body, path
        assert "Paper jam" in body, path
        assert not CODES.search(body), (path, CODES.search(body))


def test_counters_are_named_and_counted_in_their_own_unit(
    device: Any, alice: Any, login: Any
) -> None:
    CounterReadingFactory(device=device, name="impressions.color", value=146)
    # A sender that calls sheets impressions: the page still says sheets.
    CounterReadingFactory(device=device, name="sheets.total", unit="impressions", value=1200)

    body = login(alice).get(f"/devices/{device.pk}/").content.decode()

    assert "<td>Colour impressions</td>" in body
    assert "<td>Sheets</td>" in body
    assert "1,200 sheets" in body
    assert "1,200 impressions" not in body
    assert not CODES.search(body)


def test_every_supply_line_of_a_chart_looks_different(device: Any, alice: Any, login: Any) -> None:
    for key, kind, color in [
        ("ink-matte-black", "ink", "matte black"),
        ("ink-photo-black", "ink", "photo black"),
        ("ink-black", "ink", "black"),
        ("ink-black-2", "ink", "black"),
        ("maintenance", "maintenance", ""),
        ("printhead", "printhead", ""),
    ]:
        SupplyFactory(device=device, supply_key=key, kind=kind, color=color)

    body = login(alice).get(f"/devices/{device.pk}/").content.decode()

    legend = body[body.index('<div class="legend">') :]
    legend = legend[: legend.index("</div>")]
    looks = re.findall(r'<span class="legend-item ([^"]+)">', legend)
    assert len(looks) == 6
    assert len(set(looks)) == 6, looks
    assert "supply-matte-black" in looks
    assert "supply-photo-black" in looks


def test_the_audit_log_reads_as_sentences(tenant: Tenant, alice: Any, login: Any) -> None:
    AuditEvent.unscoped.create(
        reseller=tenant.reseller,
        actor_email="",
        actor_role="system",
        action="contract.device_add",
        object_type="contract",
        object_id="3",
        detail={"device": "S4X004000002", "joined_on": str(date(2026, 10, 1))},
    )
    alice.locale = "en-gb"
    alice.save(update_fields=["locale"])

    body = login(alice).get("/audit/").content.decode()

    assert "Added the printer S4X004000002 to a contract from 01/10/2026." in body
    assert "Inkmeter, automatically" in body
    assert "contract.device_add" not in body
    assert "joined_on" not in body


def test_the_alert_email_has_words_and_counts_right(tenant: Tenant, device: Any) -> None:
    tenant.reseller.support_email = "support@alpha.test"
    tenant.reseller.save(update_fields=["support_email"])
    alerts = [
        AlertFactory(
            device=device, code="supply.low.toner-cyan", description="", severity="warning"
        ),
        AlertFactory(device=device, code="media.jam", description="", severity="critical"),
    ]

    device_services.alerts_notify(alert_ids=[a.pk for a in alerts])
    email_services.emails_send_sweep()

    (sent,) = mail.outbox
    assert sent.subject == "[Inkmeter] 2 new printer alerts"
    assert "Cyan toner is low" in sent.body
    assert "Paper jam" in sent.body
    assert "HP DesignJet T830 WORDS-1" in sent.body
    assert "(s)" not in sent.subject
    assert not CODES.search(sent.body)
