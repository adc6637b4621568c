"""Device management through HTTP: rename, move (with its billing decision), retire, notes, and
acknowledging and snoozing alerts, as alice (reseller admin), a support user, bob (customer
admin) and charlie (another reseller's admin). A refusal changes nothing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
import time_machine
from django.utils.timezone import now

from accounts.models import AuditEvent, User
from billing import services as billing_services
from billing.models import ContractDevice
from devices import services
from devices.models import (
    Alert,
    CounterReading,
    Credential,
    Device,
    DeviceNote,
    DeviceState,
)
from orders.models import EmailLog, ReorderPolicy
from portal.tenancy import Role, TenantContext
from tests.conftest import LoginFn, Tenant
from tests.factories import (
    AlertFactory,
    CounterReadingFactory,
    CustomerFactory,
    DeviceFactory,
    DeviceStateFactory,
    MembershipFactory,
    SiteFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def device(tenant: Tenant) -> Device:
    device = DeviceFactory(site=tenant.site, serial="CN-MOVE-1", name="Front desk")
    DeviceStateFactory(device=device)
    return device


@pytest.fixture
def support(tenant: Tenant) -> User:
    membership = MembershipFactory(
        reseller=tenant.reseller,
        role=Role.RESELLER_SUPPORT,
        user=UserFactory(email="sam@support.test"),
    )
    return membership.user


def _contract(tenant: Tenant, device: Device, *, joined_on: date) -> ContractDevice:
    ctx = TenantContext.system(reseller=tenant.reseller)
    plan = billing_services.plan_create(
        ctx=ctx, name="Plan", currency="EUR", terms=billing_services.plan_terms_demo(joined_on)
    )
    contract = billing_services.contract_create(
        ctx=ctx,
        customer_id=device.customer_id,
        plan_id=plan.pk,
        reference="C-100",
        starts_on=joined_on,
    )
    return billing_services.contract_device_add(
        ctx=ctx, contract_id=contract.pk, device_id=device.pk, joined_on=joined_on
    )


def _text(response: Any) -> str:
    return str(response.content.decode())


# --- Rename -------------------------------------------------------------------------------------


def test_admin_renames_a_device_and_the_audit_says_from_what(
    login: LoginFn, alice: User, device: Device
) -> None:
    response = login(alice).post(f"/devices/{device.pk}/rename/", {"name": "  Plotter 2  "})

    assert response.status_code == 302
    device.refresh_from_db()
    assert device.name == "Plotter 2"
    event = AuditEvent.unscoped.get(action="device.rename")
    assert (event.detail, event.actor_email) == (
        {"old": "Front desk", "new": "Plotter 2"},
        alice.email,
    )


def test_rename_too_long_is_shown_next_to_the_field_and_changes_nothing(
    login: LoginFn, alice: User, device: Device
) -> None:
    response = login(alice).post(f"/devices/{device.pk}/rename/", {"name": "x" * 201})

    assert response.status_code == 200
    assert "Ensure this value has at most 200 characters" in _text(response)
    device.refresh_from_db()
    assert device.name == "Front desk"


def test_customer_and_support_users_may_not_rename(
    login: LoginFn, bob: User, support: User, device: Device
) -> None:
    for user in (bob, support):
        assert login(user).post(f"/devices/{device.pk}/rename/", {"name": "X"}).status_code == 403
    device.refresh_from_db()
    assert device.name == "Front desk"


def test_foreign_admin_gets_404_for_every_write_and_nothing_changes(
    login: LoginFn, charlie: User, device: Device, tenant: Tenant
) -> None:
    alert = AlertFactory(device=device)
    other_site = SiteFactory(customer=tenant.customer, name="Annex")
    client = login(charlie)

    answers = [
        client.post(f"/devices/{device.pk}/rename/", {"name": "stolen"}).status_code,
        client.post(f"/devices/{device.pk}/move/", {"site": other_site.pk}).status_code,
        client.post(
            f"/devices/{device.pk}/move/", {"site": other_site.pk, "confirm": "1"}
        ).status_code,
        client.post(f"/devices/{device.pk}/retire/", {}).status_code,
        client.post(f"/devices/{device.pk}/unretire/").status_code,
        client.post(f"/devices/{device.pk}/notes/", {"body": "hi"}).status_code,
        client.post(f"/alerts/{alert.pk}/acknowledge/").status_code,
        client.post(f"/alerts/{alert.pk}/snooze/", {"hours": "4"}).status_code,
        client.post(f"/alerts/{alert.pk}/unsnooze/").status_code,
    ]

    assert answers == [404] * 9
    device.refresh_from_db()
    alert.refresh_from_db()
    assert (device.name, device.site_id, device.retired_at) == ("Front desk", tenant.site.pk, None)
    assert (alert.acknowledged_at, alert.snoozed_until) == (None, None)
    assert not DeviceNote.unscoped.exists()
    assert not AuditEvent.unscoped.filter(action__startswith=("device.")).exists()


# --- Move ---------------------------------------------------------------------------------------


def test_move_within_the_customer_says_billing_is_unchanged_and_keeps_the_contract(
    login: LoginFn, alice: User, device: Device, tenant: Tenant
) -> None:
    membership = _contract(tenant, device, joined_on=date(2025, 1, 1))
    annex = SiteFactory(customer=tenant.customer, name="Annex")
    client = login(alice)

    confirm = client.post(f"/devices/{device.pk}/move/", {"site": annex.pk})
    assert confirm.status_code == 200
    assert 'id="billing-unchanged"' in _text(confirm)
    device.refresh_from_db()
    assert device.site_id == tenant.site.pk  # nothing written before the confirmation

    done = client.post(f"/devices/{device.pk}/move/", {"site": annex.pk, "confirm": "1"})

    assert done.status_code == 302
    device.refresh_from_db()
    membership.refresh_from_db()
    assert (device.site_id, device.customer_id) == (annex.pk, tenant.customer.pk)
    assert membership.left_on is None
    event = AuditEvent.unscoped.get(action="device.move")
    assert (event.detail["from_site"], event.detail["to_site"]) == (tenant.site.name, "Annex")


def test_move_to_another_customer_shows_the_contract_and_needs_a_decision(
    login: LoginFn, alice: User, device: Device, tenant: Tenant
) -> None:
    membership = _contract(tenant, device, joined_on=date(2025, 1, 1))
    other = SiteFactory(customer=CustomerFactory(reseller=tenant.reseller, name="Beta"), name="B1")
    client = login(alice)

    confirm = client.post(f"/devices/{device.pk}/move/", {"site": other.pk})
    page = _text(confirm)
    assert 'id="billing-decision"' in page
    assert "C-100" in page
    assert "Collectors of Alpha Customer can no longer report it" in page

    refused = client.post(f"/devices/{device.pk}/move/", {"site": other.pk, "confirm": "1"})

    assert refused.status_code == 200
    assert "Keep or end the contract membership." in _text(refused)
    device.refresh_from_db()
    membership.refresh_from_db()
    assert (device.site_id, membership.left_on) == (tenant.site.pk, None)
    assert not AuditEvent.unscoped.filter(action="device.move").exists()


def test_move_to_another_customer_ending_the_membership_moves_history_and_copies(
    login: LoginFn, alice: User, device: Device, tenant: Tenant
) -> None:
    membership = _contract(tenant, device, joined_on=date(2025, 1, 1))
    reading = CounterReadingFactory(device=device, value=500)
    alert = AlertFactory(device=device)
    ReorderPolicy.unscoped.create(
        reseller=tenant.reseller, customer=tenant.customer, device=device, threshold_percent=30
    )
    beta = CustomerFactory(reseller=tenant.reseller, name="Beta")
    other = SiteFactory(customer=beta, name="B1")
    leave = date(2026, 6, 1)

    response = login(alice).post(
        f"/devices/{device.pk}/move/",
        {"site": other.pk, "confirm": "1", "contract_action": "end", "effective_on": leave},
    )

    assert response.status_code == 302
    device.refresh_from_db()
    membership.refresh_from_db()
    assert (device.customer_id, device.site_id) == (beta.pk, other.pk)
    assert membership.left_on == leave
    assert DeviceState.unscoped.get(device=device).customer_id == beta.pk
    assert ReorderPolicy.unscoped.get(device=device).customer_id == beta.pk
    # History stays with the device, and a user of the new customer sees it.
    beta_ctx = TenantContext(reseller=tenant.reseller, role=Role.CUSTOMER_ADMIN, customer=beta)
    assert Alert.objects.for_tenant(beta_ctx).get().pk == alert.pk
    assert reading.device_id == device.pk
    actions = list(AuditEvent.unscoped.order_by("pk").values_list("action", flat=True))
    assert actions[-2:] == ["contract.device_remove", "device.move"]


def test_move_keeping_the_membership_leaves_the_contract_billing_it(
    login: LoginFn, alice: User, device: Device, tenant: Tenant
) -> None:
    membership = _contract(tenant, device, joined_on=date(2025, 1, 1))
    other = SiteFactory(customer=CustomerFactory(reseller=tenant.reseller, name="Beta"), name="B1")

    response = login(alice).post(
        f"/devices/{device.pk}/move/", {"site": other.pk, "confirm": "1", "contract_action": "keep"}
    )

    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.left_on is None
    event = AuditEvent.unscoped.get(action="device.move")
    assert event.detail["contracts"] == [{"contract": "C-100", "action": "keep", "left_on": ""}]


def test_move_to_another_resellers_site_is_refused_and_changes_nothing(
    login: LoginFn, alice: User, device: Device, foreign_tenant: Tenant
) -> None:
    client = login(alice)
    for data in (
        {"site": foreign_tenant.site.pk},
        {"site": foreign_tenant.site.pk, "confirm": "1"},
    ):
        response = client.post(f"/devices/{device.pk}/move/", data)
        assert response.status_code == 200
        assert "Select a valid choice" in _text(response)
    device.refresh_from_db()
    assert device.site_id != foreign_tenant.site.pk
    assert not AuditEvent.unscoped.filter(action="device.move").exists()


def test_move_to_the_same_site_is_refused(
    login: LoginFn, alice: User, device: Device, tenant: Tenant
) -> None:
    response = login(alice).post(f"/devices/{device.pk}/move/", {"site": tenant.site.pk})
    assert "The printer is at this site already." in _text(response)


def test_old_customers_collector_is_refused_after_a_move_to_another_customer(
    tenant: Tenant, device: Device, post: Any, collector: Any
) -> None:
    other = SiteFactory(customer=CustomerFactory(reseller=tenant.reseller, name="Beta"), name="B1")
    from devices import fleet_services

    fleet_services.device_move(ctx=tenant.ctx(), device_id=device.pk, site_id=other.pk)
    snapshot = {
        "snapshot_id": "00000000-0000-4000-8000-000000000777",
        "collected_at": now().isoformat(),
        "device": {"serial": device.serial},
    }

    answer = post(collector, [snapshot]).json()

    assert answer["accepted"] == 0
    assert "belongs to another customer" in answer["rejected"][0]["errors"][0]


# --- Retire -------------------------------------------------------------------------------------


def test_retired_device_leaves_lists_and_counts_and_a_filter_shows_it(
    login: LoginFn, alice: User, device: Device, tenant: Tenant
) -> None:
    kept = DeviceFactory(site=tenant.site, serial="CN-KEEP-1")
    AlertFactory(device=device, description="retired jam")
    AlertFactory(device=kept, description="kept jam")
    client = login(alice)

    response = client.post(f"/devices/{device.pk}/retire/", {})

    assert response.status_code == 302
    listed = _text(client.get("/devices/"))
    assert ("CN-KEEP-1" in listed, "CN-MOVE-1" in listed) == (True, False)
    retired = _text(client.get("/devices/?lifecycle=retired"))
    assert ("CN-KEEP-1" in retired, "CN-MOVE-1" in retired) == (False, True)
    everything = _text(client.get("/devices/?lifecycle=all"))
    assert ("CN-KEEP-1" in everything, "CN-MOVE-1" in everything) == (True, True)
    alerts = _text(client.get("/alerts/"))
    assert ("kept jam" in alerts, "retired jam" in alerts) == (True, False)
    detail = client.get(f"/devices/{device.pk}/")
    assert detail.status_code == 200
    assert 'id="retired-note"' in _text(detail)


def test_retire_with_a_contract_needs_a_decision_then_ends_the_membership(
    login: LoginFn, alice: User, device: Device, tenant: Tenant
) -> None:
    membership = _contract(tenant, device, joined_on=date(2025, 1, 1))
    client = login(alice)

    page = client.get(f"/devices/{device.pk}/retire/")
    assert 'id="billing-decision"' in _text(page)
    refused = client.post(f"/devices/{device.pk}/retire/", {})
    assert "Keep or end the contract membership." in _text(refused)
    device.refresh_from_db()
    assert device.retired_at is None

    client.post(
        f"/devices/{device.pk}/retire/", {"contract_action": "end", "effective_on": "2026-07-01"}
    )

    device.refresh_from_db()
    membership.refresh_from_db()
    assert device.retired_at is not None
    assert membership.left_on == date(2026, 7, 1)


def test_retiring_twice_is_a_conflict_and_unretire_returns_it(
    login: LoginFn, alice: User, device: Device
) -> None:
    client = login(alice)
    client.post(f"/devices/{device.pk}/retire/", {})
    device.refresh_from_db()
    first = device.retired_at

    again = client.post(f"/devices/{device.pk}/retire/", {})
    assert "retired already" in _text(again)
    device.refresh_from_db()
    assert device.retired_at == first

    assert client.post(f"/devices/{device.pk}/unretire/").status_code == 302
    device.refresh_from_db()
    assert device.retired_at is None
    assert "CN-MOVE-1" in _text(client.get("/devices/"))


def test_telemetry_of_a_retired_device_is_stored_and_it_stays_retired_without_email(
    tenant: Tenant, device: Device, post: Any, collector: Any
) -> None:
    from devices import fleet_services

    tenant.reseller.support_email = "support@alpha.test"
    tenant.reseller.save(update_fields=["support_email"])
    in_service = DeviceFactory(site=tenant.site, serial="CN-IN-SERVICE")
    fleet_services.device_retire(ctx=tenant.ctx(), device_id=device.pk)
    snapshots = [
        {
            "snapshot_id": f"00000000-0000-4000-8000-00000000077{n}",
            "collected_at": now().isoformat(),
            "device": {"serial": serial},
            "counters": [{"name": "impressions.total", "value": 4321}],
            "alerts": [{"code": "printhead.failure", "severity": "critical"}],
        }
        for n, serial in enumerate((device.serial, in_service.serial))
    ]

    answer = post(collector, snapshots).json()
    services.batches_followup_sweep(older_than_seconds=0)

    assert answer["accepted"] == 2
    device.refresh_from_db()
    assert device.retired_at is not None
    assert CounterReading.unscoped.get(device_id=device.pk).value == 4321
    # Both alerts are claimed (no email later either); only the printer in service is announced.
    assert Alert.unscoped.count() == 2
    assert not Alert.unscoped.filter(notified_at=None).exists()
    email = EmailLog.unscoped.get(kind=EmailLog.Kind.PRINTER_CRITICAL)
    assert "CN-IN-SERVICE" in email.body
    assert str(device) not in email.body  # "Front desk"


def test_offline_sweep_skips_retired_devices(tenant: Tenant, device: Device) -> None:
    from devices import fleet_services

    DeviceState.unscoped.filter(device=device).update(last_seen_at=now() - timedelta(days=3))
    fleet_services.device_retire(ctx=tenant.ctx(), device_id=device.pk)

    assert services.devices_offline_sweep() == 0
    assert not Alert.unscoped.filter(code=Alert.OFFLINE_CODE).exists()


# --- Notes --------------------------------------------------------------------------------------


def test_support_adds_a_note_that_customer_users_do_not_see(
    login: LoginFn, support: User, bob: User, device: Device
) -> None:
    response = login(support).post(f"/devices/{device.pk}/notes/", {"body": "Toner door sticks"})

    assert response.status_code == 302
    note = DeviceNote.unscoped.get()
    assert (note.body, note.author_email, note.device_id) == (
        "Toner door sticks",
        "sam@support.test",
        device.pk,
    )
    assert "Toner door sticks" in _text(login(support).get(f"/devices/{device.pk}/"))
    assert "Toner door sticks" not in _text(login(bob).get(f"/devices/{device.pk}/"))
    assert login(bob).post(f"/devices/{device.pk}/notes/", {"body": "x"}).status_code == 403


def test_empty_note_is_refused(login: LoginFn, alice: User, device: Device) -> None:
    client = login(alice)
    response = client.post(f"/devices/{device.pk}/notes/", {"body": "   "}, follow=True)
    assert "Write a note of at most 4000 characters." in _text(response)
    assert not DeviceNote.unscoped.exists()


# --- Alerts: acknowledge and snooze -------------------------------------------------------------


def test_acknowledged_alert_stays_open_and_shows_who_and_when(
    login: LoginFn, support: User, bob: User, device: Device
) -> None:
    alert = AlertFactory(device=device, description="Paper jam in tray 2")
    client = login(support)

    response = client.post(f"/alerts/{alert.pk}/acknowledge/", {"next": "/alerts/"})

    assert (response.status_code, response["Location"]) == (302, "/alerts/")
    alert.refresh_from_db()
    assert alert.acknowledged_by == support
    assert alert.acknowledged_at is not None
    page = _text(login(bob).get("/alerts/"))
    assert "Paper jam in tray 2" in page
    assert f"Acknowledged by {support.display_name}" in page
    again = login(support).post(f"/alerts/{alert.pk}/acknowledge/", follow=True)
    assert "acknowledged already" in _text(again)


def test_customer_user_may_not_acknowledge_or_snooze(
    login: LoginFn, bob: User, device: Device
) -> None:
    alert = AlertFactory(device=device)
    client = login(bob)
    assert client.post(f"/alerts/{alert.pk}/acknowledge/").status_code == 403
    assert client.post(f"/alerts/{alert.pk}/snooze/", {"hours": "4"}).status_code == 403
    alert.refresh_from_db()
    assert (alert.acknowledged_at, alert.snoozed_until) == (None, None)


def test_snoozed_alert_leaves_open_counts_until_the_snooze_ends(
    login: LoginFn, alice: User, device: Device, tenant: Tenant
) -> None:
    from devices import fleet_selectors

    alert = AlertFactory(device=device, description="Low on staples", severity="critical")
    ctx = tenant.ctx()
    client = login(alice)

    client.post(f"/alerts/{alert.pk}/snooze/", {"hours": "4"})

    alert.refresh_from_db()
    assert alert.snoozed_by == alice
    assert fleet_selectors.fleet_summary(ctx=ctx).open_alerts == 0
    assert fleet_selectors.device_get(ctx=ctx, device_id=device.pk).open_alerts == 0
    assert "Low on staples" not in _text(client.get("/alerts/"))
    assert "Low on staples" in _text(client.get("/alerts/?snoozed=1"))
    with time_machine.travel(now() + timedelta(hours=4, minutes=1)):
        assert fleet_selectors.fleet_summary(ctx=ctx).open_alerts == 1
        assert fleet_selectors.fleet_summary(ctx=ctx).critical_alerts == 1
        assert "Low on staples" in _text(client.get("/alerts/"))


def test_unsnooze_brings_the_alert_back_and_a_bad_duration_is_refused(
    login: LoginFn, alice: User, device: Device, tenant: Tenant
) -> None:
    alert = AlertFactory(device=device)
    client = login(alice)

    bad = client.post(f"/alerts/{alert.pk}/snooze/", {"hours": "100000"}, follow=True)
    assert "Snooze for 1 to 720 hours." in _text(bad)
    alert.refresh_from_db()
    assert alert.snoozed_until is None

    client.post(f"/alerts/{alert.pk}/snooze/", {"hours": "24"})
    client.post(f"/alerts/{alert.pk}/unsnooze/")
    alert.refresh_from_db()
    assert alert.snoozed_until is None
    actions = list(AuditEvent.unscoped.order_by("pk").values_list("action", flat=True))
    assert actions[-2:] == ["alert.snooze", "alert.unsnooze"]


def test_a_cleared_alert_cannot_be_acknowledged(
    login: LoginFn, alice: User, device: Device
) -> None:
    alert = AlertFactory(device=device, cleared_at=now())
    response = login(alice).post(f"/alerts/{alert.pk}/acknowledge/", follow=True)
    assert "cleared this alert already" in _text(response)
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_direct_credential_follows_its_device_to_the_new_customer(
    tenant: Tenant, device: Device
) -> None:
    from devices import fleet_services

    credential, _ = services.credential_create(
        ctx=tenant.ctx(), kind="direct", serial=device.serial
    )
    beta = CustomerFactory(reseller=tenant.reseller, name="Beta")
    site = SiteFactory(customer=beta, name="B1")

    fleet_services.device_move(ctx=tenant.ctx(), device_id=device.pk, site_id=site.pk)

    assert Credential.unscoped.get(pk=credential.pk).customer_id == beta.pk
