"""Supplies evaluation through its service, task and sweep: forecasts, matching, the low-supply
alert emailed once, cartridge replacements and the reorder policy's orders."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils.timezone import now

from devices import fleet_services
from orders import catalog_services, services, supply_services, tasks
from orders.models import (
    CartridgeReplacement,
    EmailLog,
    Order,
    OrderEvent,
    SupplyAlert,
    SupplyForecast,
)
from portal.errors import ConflictError
from portal.tenancy import Role, TenantContext
from tests.factories import AlertFactory, DeviceFactory, ProductFactory, SupplyFactory
from tests.orders.conftest import MODEL, daily

pytestmark = pytest.mark.django_db


def evaluate(device, capture):
    with capture(execute=True):
        supply_services.supplies_evaluate(device_ids=[device.pk])


def forecast_of(supply) -> SupplyForecast:
    return SupplyForecast.unscoped.get(supply=supply)


def test_a_falling_supply_gets_days_to_empty_and_its_product(
    supply, product, report, django_capture_on_commit_callbacks
):
    report(*daily(80, 2, 10))  # 80 -> 62, 2 % a day

    evaluate(supply.device, django_capture_on_commit_callbacks)

    forecast = forecast_of(supply)
    assert forecast.method == "theil_sen"
    assert forecast.days_to_empty == pytest.approx(31.0, abs=0.01)
    assert forecast.product == product
    assert forecast.match == "part_number"
    assert forecast.evaluated_observed_at == supply.observed_at
    assert SupplyAlert.unscoped.count() == 0


def test_the_sweep_finds_exactly_the_supplies_with_newer_readings(
    supply, product, report, django_capture_on_commit_callbacks
):
    report(*daily(80, 2, 3))
    assert supply_services.supplies_pending() == [supply.device_id]

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.orders_sweep_task.delay().get() == 1

    assert supply_services.supplies_pending() == []
    report((now() + timedelta(minutes=1), 75.0))
    assert supply_services.supplies_pending() == [supply.device_id]


def test_reaching_the_threshold_emails_contacts_and_support_once(
    tenant, bob, supply, product, report, django_capture_on_commit_callbacks
):
    report(*daily(30, 2, 10))  # ends at 12 %, below the default 15 %

    evaluate(supply.device, django_capture_on_commit_callbacks)

    alert = SupplyAlert.unscoped.get(supply=supply)
    assert alert.status == "sent"
    assert alert.reason == "reorder_point"
    assert sorted(m.to[0] for m in mail.outbox) == [
        "bob@customer.test",
        "frontdesk@alpha-customer.test",
        "support@alpha-printing.test",
    ]
    body = mail.outbox[0].body
    assert "Front office" in body
    assert "Alpha HQ" in body
    assert "12%" in body  # the installation's format (DEFAULT_LOCALE en-us)
    assert "empty in about 6 days" in body
    assert f"/orders/new/?supply_id={supply.pk}" in body
    assert list(EmailLog.unscoped.values_list("status", flat=True)) == ["sent"] * 3

    report((now() + timedelta(hours=1), 11.0))
    evaluate(supply.device, django_capture_on_commit_callbacks)
    supply_services.supply_alerts_notify_sweep(older_than_seconds=0)

    assert len(mail.outbox) == 3
    assert SupplyAlert.unscoped.count() == 1


def test_a_user_who_opted_out_gets_no_low_supply_email(
    tenant, bob, supply, product, report, django_capture_on_commit_callbacks
):
    ctx = TenantContext(
        reseller=tenant.reseller, role=Role.CUSTOMER_ADMIN, customer=tenant.customer, user=bob
    )
    catalog_services.preference_set(ctx=ctx, kind="supply_low", is_enabled=False)
    report(*daily(20, 1, 10))

    evaluate(supply.device, django_capture_on_commit_callbacks)

    assert "bob@customer.test" not in [m.to[0] for m in mail.outbox]
    assert len(mail.outbox) == 2


def test_a_claimed_alert_is_not_emailed_twice(
    supply, product, report, django_capture_on_commit_callbacks
):
    report(*daily(20, 1, 10))
    with django_capture_on_commit_callbacks(execute=False):
        supply_services.supplies_evaluate(device_ids=[supply.device_id])  # task "lost"
    alert = SupplyAlert.unscoped.get(supply=supply)
    assert alert.status == "armed"

    with django_capture_on_commit_callbacks(execute=True):
        assert supply_services.supply_alert_notify(alert_id=alert.pk) is True
        assert supply_services.supply_alert_notify(alert_id=alert.pk) is False

    assert len(mail.outbox) == 2  # site contact and support inbox; nobody else is a member


def test_a_coarse_printer_falls_back_to_the_threshold(
    supply, product, report, django_capture_on_commit_callbacks
):
    report(*daily(100, 0, 2), (now() + timedelta(days=1), 50.0))
    evaluate(supply.device, django_capture_on_commit_callbacks)
    forecast = forecast_of(supply)
    assert (forecast.method, forecast.is_coarse, forecast.days_to_empty) == (
        "threshold",
        True,
        None,
    )
    assert SupplyAlert.unscoped.count() == 0

    report((now() + timedelta(days=2), 10.0))
    evaluate(supply.device, django_capture_on_commit_callbacks)

    assert forecast_of(supply).is_coarse is True
    assert SupplyAlert.unscoped.get(supply=supply).reason == "reorder_point"


def test_the_lead_time_raises_the_alert_before_the_threshold(
    tenant, supply, product, report, django_capture_on_commit_callbacks
):
    catalog_services.policy_set(
        ctx=tenant.ctx(),
        customer_id=tenant.customer.pk,
        threshold_percent=5,
        lead_time_days=14,
        mode="alert",
    )
    report(*daily(50, 3, 10))  # 23 % left at 3 % a day: about 7.7 days

    evaluate(supply.device, django_capture_on_commit_callbacks)

    assert forecast_of(supply).days_to_empty == pytest.approx(23 / 3, abs=0.01)
    assert SupplyAlert.unscoped.get(supply=supply).days_to_empty == pytest.approx(23 / 3, abs=0.01)


def test_a_device_override_beats_the_customer_policy(tenant, supply, product):
    ctx = tenant.ctx()
    catalog_services.policy_set(
        ctx=ctx,
        customer_id=tenant.customer.pk,
        threshold_percent=20,
        lead_time_days=5,
        mode="draft",
    )
    catalog_services.policy_set(
        ctx=ctx,
        customer_id=tenant.customer.pk,
        device_id=supply.device_id,
        threshold_percent=8,
        lead_time_days=3,
        mode="alert",
    )

    policy = catalog_services.policy_effective(
        ctx=ctx, customer_id=tenant.customer.pk, device_id=supply.device_id
    )
    other = catalog_services.policy_effective(
        ctx=ctx, customer_id=tenant.customer.pk, device_id=None
    )

    assert (policy.threshold_percent, policy.lead_time_days, policy.mode) == (8, 3, "alert")
    assert (other.threshold_percent, other.lead_time_days, other.mode) == (20, 5, "draft")


def test_defaults_apply_without_a_policy(tenant):
    policy = catalog_services.policy_effective(ctx=tenant.ctx(), customer_id=tenant.customer.pk)

    assert (policy.threshold_percent, policy.lead_time_days, policy.mode) == (15, 7, "alert")


def test_a_replacement_closes_the_alert_delivers_the_order_and_records_the_yield(
    tenant, supply, product, report, django_capture_on_commit_callbacks
):
    start = now() - timedelta(days=30)
    report((start, 100.0), pages=50_000)  # the cartridge was installed here
    report((start + timedelta(days=1), 100.0), serial="CART-2", pages=50_100)
    report(*daily(36, 2, 12, end=now() - timedelta(days=2)), pages=61_000)  # down to 14 %
    evaluate(supply.device, django_capture_on_commit_callbacks)
    alert = SupplyAlert.unscoped.get(supply=supply)
    order = services.order_create(
        ctx=tenant.ctx(),
        site_id=tenant.site.pk,
        lines=[services.LineIn(product_id=product.pk, supply_id=supply.pk)],
        submit=True,
    )
    for step, extra in (("accepted", {}), ("shipped", {"carrier": "DHL", "tracking_number": "1Z"})):
        services.order_transition(ctx=tenant.ctx(), order_id=order.pk, to=step, **extra)

    report((now() - timedelta(days=1), 99.0), serial="CART-3", pages=63_400)
    evaluate(supply.device, django_capture_on_commit_callbacks)

    replacement = CartridgeReplacement.unscoped.get(new_serial="CART-3")
    assert (replacement.old_serial, replacement.old_percent, replacement.new_percent) == (
        "CART-2",
        14.0,
        99.0,
    )
    assert replacement.pages_at_install == Decimal("50100")
    assert replacement.pages_at_removal == Decimal("63400")
    assert replacement.pages_yielded == Decimal("13300")
    assert replacement.rated_yield == 13000
    alert.refresh_from_db()
    assert (alert.status, alert.closed_reason) == ("closed", "cartridge replaced")
    order.refresh_from_db()
    assert order.status == "delivered"
    assert OrderEvent.unscoped.filter(order=order).last().by_label == "System"
    forecast = forecast_of(supply)
    assert forecast.cartridge_since == replacement.detected_at
    assert forecast.method == "insufficient"  # one reading of the new cartridge so far


def test_after_a_replacement_the_next_low_level_emails_again(
    supply, product, report, django_capture_on_commit_callbacks
):
    report(*daily(20, 1, 10, end=now() - timedelta(days=20)))
    evaluate(supply.device, django_capture_on_commit_callbacks)
    first = len(mail.outbox)
    report(*daily(100, 5, 18))  # a jump to 100 %, then down to 15 %

    evaluate(supply.device, django_capture_on_commit_callbacks)

    assert CartridgeReplacement.unscoped.count() == 1
    assert list(SupplyAlert.unscoped.order_by("pk").values_list("status", flat=True)) == [
        "closed",
        "sent",
    ]
    assert len(mail.outbox) == 2 * first


def test_re_arming_a_sent_alert_emails_again_at_the_next_evaluation(
    tenant, bob, supply, product, report, django_capture_on_commit_callbacks
):
    report(*daily(20, 1, 10))
    evaluate(supply.device, django_capture_on_commit_callbacks)
    alert = SupplyAlert.unscoped.get(supply=supply)
    ctx = TenantContext(
        reseller=tenant.reseller, role=Role.CUSTOMER_ADMIN, customer=tenant.customer, user=bob
    )

    with django_capture_on_commit_callbacks(execute=True):
        supply_services.supply_alert_rearm(ctx=ctx, alert_id=alert.pk)

    assert len(mail.outbox) == 6
    assert SupplyAlert.unscoped.filter(supply=supply).exclude(status="closed").count() == 1


def test_only_a_sent_alert_can_be_re_armed(tenant, supply, product, report):
    report(*daily(20, 1, 10))
    supply_services.supplies_evaluate(device_ids=[supply.device_id])
    alert = SupplyAlert.unscoped.get(supply=supply)

    with pytest.raises(ConflictError) as refused:
        supply_services.supply_alert_rearm(ctx=tenant.ctx(), alert_id=alert.pk)

    assert refused.value.code == "alert_not_sent"
    alert.refresh_from_db()
    assert alert.status == "armed"


def test_a_critical_printer_alert_on_the_supply_raises_the_alert(
    supply, product, report, django_capture_on_commit_callbacks
):
    report(*daily(60, 1, 5))
    AlertFactory(
        device=supply.device,
        code="toner.empty",
        severity="critical",
        description="Black toner cartridge empty",
    )

    evaluate(supply.device, django_capture_on_commit_callbacks)

    assert SupplyAlert.unscoped.get(supply=supply).reason == "critical"
    assert EmailLog.unscoped.filter(kind="printer_critical").count() == 2


@pytest.mark.parametrize(("mode", "status"), [("draft", "draft"), ("submit", "submitted")])
def test_the_policy_mode_drafts_or_submits_one_order(
    tenant, supply, product, report, django_capture_on_commit_callbacks, mode, status
):
    catalog_services.policy_set(
        ctx=tenant.ctx(),
        customer_id=tenant.customer.pk,
        threshold_percent=15,
        lead_time_days=7,
        mode=mode,
    )
    report(*daily(20, 1, 10))

    evaluate(supply.device, django_capture_on_commit_callbacks)
    report((now() + timedelta(hours=2), 10.0))
    evaluate(supply.device, django_capture_on_commit_callbacks)

    order = Order.unscoped.get()
    assert (order.status, order.source) == (status, "automatic")
    assert [(line.supply_id, line.product_id) for line in order.lines.all()] == [
        (supply.pk, product.pk)
    ]


def test_matching_by_model_and_colour_then_by_remembered_mapping(
    tenant, device, product, django_capture_on_commit_callbacks
):
    cyan = SupplyFactory(device=device, supply_key="toner-cyan", color="cyan", part_number="")
    odd = SupplyFactory(device=device, supply_key="toner-x", color="magenta", part_number="NOPE")
    cyan_product = ProductFactory(
        reseller=tenant.reseller, color="cyan", part_number="W2121X", compatible_models=[MODEL]
    )
    magenta = ProductFactory(reseller=tenant.reseller, color="magenta", part_number="W2123X")
    evaluate(device, django_capture_on_commit_callbacks)
    assert (forecast_of(cyan).product, forecast_of(cyan).match) == (cyan_product, "model_color")
    assert forecast_of(odd).product is None

    catalog_services.mapping_remember(ctx=tenant.ctx(), supply_id=odd.pk, product_id=magenta.pk)
    same_kind = SupplyFactory(
        device=DeviceFactory(site=tenant.site, model=MODEL),
        supply_key="toner-x",
        color="magenta",
        part_number="NOPE",
    )
    supply_services.supplies_evaluate(device_ids=[same_kind.device_id])

    assert (forecast_of(odd).product, forecast_of(odd).match) == (magenta, "mapping")
    assert (forecast_of(same_kind).product, forecast_of(same_kind).match) == (magenta, "mapping")


def test_two_products_that_both_fit_are_not_guessed(
    tenant, device, django_capture_on_commit_callbacks
):
    supply = SupplyFactory(device=device, color="black", part_number="")
    for _ in range(2):
        ProductFactory(reseller=tenant.reseller, color="black", compatible_models=[MODEL])

    evaluate(device, django_capture_on_commit_callbacks)

    assert forecast_of(supply).product is None
    assert forecast_of(supply).match == ""


def test_another_tenants_task_cannot_touch_a_foreign_product(
    tenant, foreign_tenant, supply, report, django_capture_on_commit_callbacks
):
    ProductFactory(reseller=foreign_tenant.reseller, part_number="W2120X")
    report(*daily(20, 1, 10))

    evaluate(supply.device, django_capture_on_commit_callbacks)

    assert forecast_of(supply).product is None


def test_a_replacement_deep_in_a_backlog_of_readings_is_still_found(
    supply, product, report, django_capture_on_commit_callbacks
):
    start = now() - timedelta(days=30)
    report((start, 81.0))
    evaluate(supply.device, django_capture_on_commit_callbacks)
    hourly = [(start + timedelta(hours=1 + i), 80 - 0.1 * i) for i in range(150)]
    jump_at = start + timedelta(hours=151)
    after = [(jump_at + timedelta(hours=i), 100 - 0.1 * i) for i in range(250)]
    report(*hourly, *after)  # the jump is older than the newest 200 readings

    evaluate(supply.device, django_capture_on_commit_callbacks)

    replacement = CartridgeReplacement.unscoped.get(supply=supply)
    assert replacement.detected_at == jump_at
    forecast = forecast_of(supply)
    assert forecast.cartridge_since == jump_at
    assert forecast.slope_per_day == pytest.approx(-2.4)


def test_an_ink_rated_in_ml_has_no_page_yield_to_compare(
    tenant, supply, report, django_capture_on_commit_callbacks
):
    ProductFactory(reseller=tenant.reseller, part_number="W2120X", rated_yield=130, yield_unit="ml")
    start = now() - timedelta(days=5)
    report((start, 30.0), pages=1_000)
    report((start + timedelta(days=1), 99.0), serial="CART-9", pages=1_400)

    evaluate(supply.device, django_capture_on_commit_callbacks)

    assert CartridgeReplacement.unscoped.get(supply=supply).rated_yield is None


def test_a_retired_printer_raises_no_low_supply_alert_until_it_returns_to_service(
    tenant, alice, bob, supply, product, report, django_capture_on_commit_callbacks
):
    """A retired printer that still reports is stored, not acted on: no forecast run, no alert,
    no email, no reorder, and the sweep does not pick it up again and again. Back in service,
    its newer readings are evaluated as any other's."""
    ctx = TenantContext(reseller=tenant.reseller, role=Role.RESELLER_ADMIN, user=alice)
    fleet_services.device_retire(ctx=ctx, device_id=supply.device_id)
    report(*daily(30, 2, 10))  # ends at 12 %, below the default 15 %

    evaluate(supply.device, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.orders_sweep_task.delay().get()

    assert supply_services.supplies_pending() == []
    assert not SupplyForecast.unscoped.filter(supply=supply).exists()
    assert SupplyAlert.unscoped.count() == 0
    assert mail.outbox == []

    fleet_services.device_unretire(ctx=ctx, device_id=supply.device_id)
    assert supply_services.supplies_pending() == [supply.device_id]
    with django_capture_on_commit_callbacks(execute=True):
        tasks.orders_sweep_task.delay().get()

    assert SupplyAlert.unscoped.get(supply=supply).reason == "reorder_point"
