"""Orders through the pages, the API and the services: placing, approval, fulfilment, refusals
that change nothing, one open line per supply, tenant and customer isolation, CSV export."""

from __future__ import annotations

import csv
import io

import pytest
from django.core import mail

from orders import catalog_services, services
from orders.models import EmailLog, Order, OrderEvent, OrderLine
from portal.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from portal.tenancy import Role, TenantContext
from tests.factories import CustomerFactory, SiteFactory
from tests.orders.conftest import customer_member

pytestmark = pytest.mark.django_db


def ctx_for(tenant, user, role):
    customer = tenant.customer if role in (Role.CUSTOMER_ADMIN, Role.CUSTOMER_BUYER) else None
    return TenantContext(reseller=tenant.reseller, role=role, customer=customer, user=user)


def place(tenant, user, role, product, supply=None, submit=True) -> Order:
    return services.order_create(
        ctx=ctx_for(tenant, user, role),
        site_id=tenant.site.pk,
        lines=[services.LineIn(product_id=product.pk, quantity=2, supply_id=supply and supply.pk)],
        submit=submit,
    )


def order_state(order: Order) -> tuple:
    order.refresh_from_db()
    return (
        order.status,
        order.carrier,
        order.tracking_number,
        OrderEvent.unscoped.filter(order=order).count(),
        EmailLog.unscoped.filter(order=order).count(),
        list(OrderLine.unscoped.filter(order=order).values_list("is_open", flat=True)),
    )


def test_a_customer_places_an_order_from_the_catalog_page(
    tenant, bob, device, product, login, django_capture_on_commit_callbacks
):
    client = login(bob)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/orders/new/",
            {"site": tenant.site.pk, "product": product.pk, "quantity": 3, "place": "1"},
        )

    order = Order.unscoped.get()
    assert response.status_code == 302
    assert response["Location"] == f"/orders/{order.pk}/"
    assert (order.status, order.customer_id, order.placed_by) == (
        "submitted",
        tenant.customer.pk,
        bob,
    )
    line = order.lines.get()
    assert (line.quantity, line.unit_price, str(line.line_total)) == (3, product.price, "567.00")
    assert list(order.events.values_list("from_status", "to_status", "by")) == [
        ("", "draft", bob.pk),
        ("draft", "submitted", bob.pk),
    ]
    assert sorted(m.to[0] for m in mail.outbox) == [
        "bob@customer.test",
        "support@alpha-printing.test",
    ]
    assert mail.outbox[0].subject == f"[Inkmeter] Order {order.number}: submitted"


def test_the_order_form_opens_pre_filled_from_the_email_link(tenant, bob, supply, product, login):
    from orders.supply_services import supplies_evaluate

    supplies_evaluate(device_ids=[supply.device_id])

    response = login(bob).get(f"/orders/new/?supply_id={supply.pk}")

    body = response.content.decode()
    assert response.status_code == 200
    assert f'<option value="{product.pk}" selected>' in body
    assert f'<option value="{tenant.site.pk}" selected>' in body
    assert f'name="supply_id" value="{supply.pk}"' in body


def test_the_full_fulfilment_path_is_recorded_with_who_and_when(
    tenant, bob, alice, product, django_capture_on_commit_callbacks
):
    order = place(tenant, bob, Role.CUSTOMER_ADMIN, product)
    staff = ctx_for(tenant, alice, Role.RESELLER_ADMIN)

    with django_capture_on_commit_callbacks(execute=True):
        services.order_transition(ctx=staff, order_id=order.pk, to="accepted")
        services.order_transition(
            ctx=staff, order_id=order.pk, to="shipped", carrier="UPS", tracking_number="1Z999"
        )
        services.order_transition(ctx=staff, order_id=order.pk, to="delivered")

    order.refresh_from_db()
    assert (order.status, order.carrier, order.tracking_number) == ("delivered", "UPS", "1Z999")
    assert list(order.events.values_list("to_status", "by_label")) == [
        ("draft", "bob@customer.test"),
        ("submitted", "bob@customer.test"),
        ("accepted", "admin@alpha.test"),
        ("shipped", "admin@alpha.test"),
        ("delivered", "admin@alpha.test"),
    ]
    subjects = [m.subject for m in mail.outbox if m.to == ["bob@customer.test"]]
    assert [s.rsplit(": ", 1)[1] for s in subjects] == ["accepted", "shipped", "delivered"]
    shipped = next(m for m in mail.outbox if m.subject.endswith("shipped"))
    assert "Tracking number: 1Z999" in shipped.body


@pytest.mark.parametrize(
    ("to", "code"),
    [("delivered", "transition_not_allowed"), ("draft", "transition_not_allowed")],
)
def test_an_illegal_transition_is_refused_and_changes_nothing(
    tenant, bob, alice, product, to, code
):
    order = place(tenant, bob, Role.CUSTOMER_ADMIN, product)
    before = order_state(order)

    with pytest.raises(ConflictError) as refused:
        services.order_transition(
            ctx=ctx_for(tenant, alice, Role.RESELLER_ADMIN), order_id=order.pk, to=to
        )

    assert refused.value.code == code
    assert refused.value.message.startswith(f"Order {order.number} is submitted; it cannot become")
    assert order_state(order) == before


def test_a_customer_cannot_accept_or_ship(tenant, bob, product):
    order = place(tenant, bob, Role.CUSTOMER_ADMIN, product)
    before = order_state(order)

    with pytest.raises(PermissionDeniedError):
        services.order_transition(
            ctx=ctx_for(tenant, bob, Role.CUSTOMER_ADMIN), order_id=order.pk, to="accepted"
        )

    assert order_state(order) == before


def test_shipping_needs_a_carrier_and_a_tracking_number(tenant, bob, alice, product):
    order = place(tenant, bob, Role.CUSTOMER_ADMIN, product)
    staff = ctx_for(tenant, alice, Role.RESELLER_ADMIN)
    services.order_transition(ctx=staff, order_id=order.pk, to="accepted")
    before = order_state(order)

    with pytest.raises(DomainError) as refused:
        services.order_transition(ctx=staff, order_id=order.pk, to="shipped", carrier="UPS")

    assert refused.value.code == "shipment_incomplete"
    assert refused.value.fields == {"tracking_number": ["This field is required."]}
    assert order_state(order) == before


def test_a_customer_cannot_cancel_once_the_reseller_accepted(tenant, bob, alice, product):
    order = place(tenant, bob, Role.CUSTOMER_ADMIN, product)
    services.order_transition(
        ctx=ctx_for(tenant, alice, Role.RESELLER_ADMIN), order_id=order.pk, to="accepted"
    )
    before = order_state(order)

    with pytest.raises(PermissionDeniedError) as refused:
        services.order_transition(
            ctx=ctx_for(tenant, bob, Role.CUSTOMER_ADMIN), order_id=order.pk, to="cancelled"
        )

    assert "ask your reseller" in refused.value.message
    assert order_state(order) == before


def test_the_page_shows_the_refusal_and_the_order_stays_as_it_was(tenant, bob, product, login):
    order = place(tenant, bob, Role.CUSTOMER_ADMIN, product)
    before = order_state(order)
    client = login(bob)

    response = client.post(f"/orders/{order.pk}/transition/", {"to": "delivered"}, follow=True)

    assert response.status_code == 200
    assert f"Order {order.number} is submitted; it cannot become delivered" in (
        response.content.decode()
    )
    assert order_state(order) == before


def test_a_buyers_order_waits_for_the_customer_admin_when_approval_is_on(
    tenant, bob, product, django_capture_on_commit_callbacks
):
    catalog_services.policy_set(
        ctx=tenant.ctx(),
        customer_id=tenant.customer.pk,
        threshold_percent=15,
        lead_time_days=7,
        mode="alert",
        requires_approval=True,
    )
    buyer = customer_member(tenant, Role.CUSTOMER_BUYER, "buyer@customer.test")

    with django_capture_on_commit_callbacks(execute=True):
        order = place(tenant, buyer, Role.CUSTOMER_BUYER, product)
    assert order.status == "pending_approval"
    assert [m.to[0] for m in mail.outbox] == ["bob@customer.test", "buyer@customer.test"]

    with pytest.raises(PermissionDeniedError):
        services.order_transition(
            ctx=ctx_for(tenant, buyer, Role.CUSTOMER_BUYER), order_id=order.pk, to="submitted"
        )
    services.order_transition(
        ctx=ctx_for(tenant, bob, Role.CUSTOMER_ADMIN), order_id=order.pk, to="submitted"
    )

    order.refresh_from_db()
    assert order.status == "submitted"
    assert order.events.last().by == bob


def test_the_same_replenishment_ordered_twice_gives_one_line(tenant, bob, alice, supply, product):
    first = place(tenant, bob, Role.CUSTOMER_ADMIN, product, supply=supply)
    orders_before = Order.unscoped.count()

    with pytest.raises(ConflictError) as refused:
        place(tenant, alice, Role.RESELLER_ADMIN, product, supply=supply)

    assert refused.value.code == "replenishment_on_order"
    assert first.number in refused.value.message
    assert Order.unscoped.count() == orders_before
    assert OrderLine.unscoped.filter(supply=supply).count() == 1


def test_a_cancelled_replenishment_can_be_ordered_again(tenant, bob, supply, product):
    first = place(tenant, bob, Role.CUSTOMER_ADMIN, product, supply=supply)
    services.order_transition(
        ctx=ctx_for(tenant, bob, Role.CUSTOMER_ADMIN), order_id=first.pk, to="cancelled"
    )

    second = place(tenant, bob, Role.CUSTOMER_ADMIN, product, supply=supply)

    assert list(
        OrderLine.unscoped.filter(supply=supply).order_by("pk").values_list("order_id", "is_open")
    ) == [(first.pk, False), (second.pk, True)]


def test_a_foreign_reseller_gets_404(tenant, bob, charlie, product, login):
    order = place(tenant, bob, Role.CUSTOMER_ADMIN, product)
    client = login(charlie)

    assert client.get(f"/orders/{order.pk}/").status_code == 404
    assert client.post(f"/orders/{order.pk}/transition/", {"to": "accepted"}).status_code == 404
    assert client.get(f"/catalog/{product.pk}/edit/").status_code == 404
    assert order_state(order)[0] == "submitted"
    assert "HP-212X-K" not in client.get("/catalog/").content.decode()


def test_a_customer_sees_only_its_own_orders(tenant, bob, alice, product, login):
    mine = place(tenant, bob, Role.CUSTOMER_ADMIN, product)
    sibling = CustomerFactory(reseller=tenant.reseller, name="Sibling Ltd")
    sibling_site = SiteFactory(customer=sibling, name="Sibling depot")
    theirs = services.order_create(
        ctx=ctx_for(tenant, alice, Role.RESELLER_ADMIN),
        site_id=sibling_site.pk,
        lines=[services.LineIn(product_id=product.pk)],
    )
    client = login(bob)

    listing = client.get("/orders/").content.decode()

    assert mine.number in listing
    assert theirs.number not in listing
    assert "Sibling depot" not in listing
    assert client.get(f"/orders/{theirs.pk}/").status_code == 404
    with pytest.raises(NotFoundError):
        services.order_create(
            ctx=ctx_for(tenant, bob, Role.CUSTOMER_ADMIN),
            site_id=sibling_site.pk,
            lines=[services.LineIn(product_id=product.pk)],
        )


def test_the_fulfilment_queue_shows_what_waits_for_the_reseller(tenant, bob, alice, product, login):
    waiting = place(tenant, bob, Role.CUSTOMER_ADMIN, product)
    draft = place(tenant, bob, Role.CUSTOMER_ADMIN, product, submit=False)

    body = login(alice).get("/orders/?queue=1").content.decode()

    assert waiting.number in body
    assert draft.number not in body


def test_the_csv_export_streams_lines_and_defuses_formulas(tenant, bob, product, login):
    tenant.site.name = '=HYPERLINK("http://evil")'
    tenant.site.save(update_fields=["name"])
    order = place(tenant, bob, Role.CUSTOMER_ADMIN, product)

    response = login(bob).get("/orders/export.csv")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["order", "created_at", "status", "customer"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["order"] == order.number
    assert row["site"] == '\'=HYPERLINK("http://evil")'
    assert (row["sku"], row["quantity"], row["line_total"], row["currency"]) == (
        "HP-212X-K",
        "2",
        "378.00",
        "EUR",
    )


def test_the_api_refuses_an_illegal_transition_in_the_one_error_format(tenant, bob, product, login):
    order = place(tenant, bob, Role.CUSTOMER_ADMIN, product)
    before = order_state(order)

    response = login(bob).post(
        f"/api/v1/orders/{order.pk}/transition", {"to": "shipped"}, content_type="application/json"
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "transition_not_allowed"
    assert order_state(order) == before


def test_the_api_lists_and_shows_orders_of_the_tenant_only(tenant, bob, charlie, product, login):
    order = place(tenant, bob, Role.CUSTOMER_ADMIN, product)

    listing = login(bob).get("/api/v1/orders").json()
    detail = login(bob).get(f"/api/v1/orders/{order.pk}").json()

    assert [o["number"] for o in listing["results"]] == [order.number]
    assert [e["to_status"] for e in detail["events"]] == ["draft", "submitted"]
    assert detail["lines"][0]["sku"] == "HP-212X-K"
    assert login(charlie).get(f"/api/v1/orders/{order.pk}").status_code == 404
