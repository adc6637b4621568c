"""Webhook pages for reseller admins: endpoints with a secret shown once, a test event, the
delivery log (paginated, empty state) with redelivery; other roles and tenants see nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from integrations import services
from integrations.models import Event, WebhookDelivery, WebhookEndpoint
from tests.integrations.conftest import Hooked, Receiver

pytestmark = pytest.mark.django_db


def _form(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "url": url,
        "description": "ERP",
        "events": ["order.placed"],
        "is_active": "on",
        **extra,
    }


def test_the_list_starts_empty_with_a_way_to_add_one(login, alice):
    page = login(alice).get("/settings/webhooks/").content.decode()

    assert "No webhook endpoints yet" in page
    assert reverse("webhook-create") in page
    log = login(alice).get("/settings/webhooks/deliveries/").content.decode()
    assert "No deliveries yet" in log


def test_creating_shows_the_secret_once(
    login, alice, receiver: Receiver, private_urls_allowed, django_capture_on_commit_callbacks
):
    client = login(alice)

    created = client.post("/settings/webhooks/new/", _form(receiver.url))

    endpoint = WebhookEndpoint.unscoped.get()
    assert created.status_code == 200
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret in created.content.decode()
    assert endpoint.events == ["order.placed"]
    assert endpoint.secret not in client.get("/settings/webhooks/").content.decode()
    edit = client.get(reverse("webhook-edit", kwargs={"endpoint_id": endpoint.pk}))
    assert endpoint.secret not in edit.content.decode()


def test_a_refused_url_is_shown_beside_the_field_and_nothing_is_saved(login, alice):
    page = login(alice).post("/settings/webhooks/new/", _form("http://192.168.1.20/hook"))

    assert page.status_code == 200
    assert page.context["form"].errors["url"] == [
        "Addresses on a private or local network cannot receive webhooks."
    ]
    assert WebhookEndpoint.unscoped.count() == 0


def test_no_events_chosen_is_refused_beside_the_field(login, alice, private_urls_allowed):
    page = login(alice).post("/settings/webhooks/new/", _form("https://h.example/", events=[]))

    assert "events" in page.context["form"].errors
    assert WebhookEndpoint.unscoped.count() == 0


def test_editing_and_rotating(login, alice, hooked: Hooked):
    client = login(alice)
    url = reverse("webhook-edit", kwargs={"endpoint_id": hooked.endpoint.pk})

    saved = client.post(url, _form(hooked.endpoint.url, events=["order.shipped", "supply.low"]))
    rotated = client.post(reverse("webhook-rotate", kwargs={"endpoint_id": hooked.endpoint.pk}))

    assert saved.status_code == 302
    endpoint = WebhookEndpoint.unscoped.get()
    assert endpoint.events == ["order.shipped", "supply.low"]
    assert endpoint.secret != hooked.secret
    assert endpoint.secret in rotated.content.decode()


def test_send_a_test_event_then_redeliver_it(
    login, alice, hooked: Hooked, receiver: Receiver, django_capture_on_commit_callbacks
):
    client = login(alice)
    test_url = reverse("webhook-test", kwargs={"endpoint_id": hooked.endpoint.pk})

    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(test_url)
    first = WebhookDelivery.unscoped.get()
    detail = reverse("webhook-delivery-detail", kwargs={"delivery_id": first.pk})
    assert sent["Location"] == detail
    assert "Delivered" in client.get(detail).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("webhook-redeliver", kwargs={"delivery_id": first.pk}))

    again = WebhookDelivery.unscoped.exclude(pk=first.pk).get()
    assert (again.event_id, again.status, again.event) == (
        first.event_id,
        "succeeded",
        "webhook.test",
    )
    assert len(receiver.received) == 2
    log = client.get("/settings/webhooks/deliveries/").content.decode()
    assert log.count("webhook.test") == 2


def test_the_log_pages_and_filters_by_status(login, alice, hooked: Hooked, monkeypatch):
    monkeypatch.setattr(services, "_deliveries_enqueue", lambda ids, **kw: None)
    for _ in range(30):
        services.webhook_emit(
            reseller_id=hooked.endpoint.reseller_id, event=Event.ORDER_PLACED, data={}
        )
    client = login(alice)

    first = client.get("/settings/webhooks/deliveries/")
    second = client.get("/settings/webhooks/deliveries/?page=2")
    failed = client.get("/settings/webhooks/deliveries/?status=failed")

    assert len(first.context["page"].object_list) == 25
    assert len(second.context["page"].object_list) == 5
    assert "No deliveries yet" in failed.content.decode()


def test_the_log_costs_the_same_queries_for_5_or_30_rows(
    login, alice, hooked: Hooked, monkeypatch, assert_data_queries
):
    monkeypatch.setattr(services, "_deliveries_enqueue", lambda ids, **kw: None)
    client = login(alice)
    counts = []
    for rows in (5, 25):
        for _ in range(rows):
            services.webhook_emit(
                reseller_id=hooked.endpoint.reseller_id, event=Event.ORDER_PLACED, data={}
            )
        with assert_data_queries(100, exact=False) as captured:
            client.get("/settings/webhooks/deliveries/")
        counts.append(len(captured.captured_queries))

    assert counts[0] == counts[1]


def test_customers_and_other_roles_may_not_manage_webhooks(login, bob):
    assert login(bob).get("/settings/webhooks/").status_code == 403
    assert login(bob).get("/settings/webhooks/deliveries/").status_code == 403


def test_another_reseller_sees_none_of_it(login, charlie, hooked: Hooked, monkeypatch):
    monkeypatch.setattr(services, "_deliveries_enqueue", lambda ids, **kw: None)
    [delivery_id] = services.webhook_emit(
        reseller_id=hooked.endpoint.reseller_id, event=Event.ORDER_PLACED, data={}
    )
    client = login(charlie)
    endpoint = {"endpoint_id": hooked.endpoint.pk}
    delivery = {"delivery_id": delivery_id}

    assert client.get(reverse("webhook-edit", kwargs=endpoint)).status_code == 404
    assert client.post(reverse("webhook-rotate", kwargs=endpoint)).status_code == 404
    assert client.post(reverse("webhook-test", kwargs=endpoint)).status_code == 404
    assert client.get(reverse("webhook-delivery-detail", kwargs=delivery)).status_code == 404
    assert client.post(reverse("webhook-redeliver", kwargs=delivery)).status_code == 404
    assert (
        client.get(f"/settings/webhooks/deliveries/?endpoint={hooked.endpoint.pk}").status_code
        == 404
    )
    listing = client.get("/settings/webhooks/").content.decode()
    log = client.get("/settings/webhooks/deliveries/").content.decode()
    assert hooked.endpoint.url not in listing
    assert "No deliveries yet" in log
    assert WebhookDelivery.unscoped.count() == 1
    assert WebhookEndpoint.unscoped.get().secret == hooked.secret  # the rotate changed nothing


def test_a_delivery_error_reads_in_the_readers_language(
    login, alice, tenant, hooked: Hooked, settings, django_capture_on_commit_callbacks
):
    """The worker logs in English whatever the installation's language; each reader sees it
    in their own."""
    settings.LANGUAGE_CODE = "de"
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.webhook_test_send(ctx=tenant.ctx(), endpoint_id=hooked.endpoint.pk)
    delivery.refresh_from_db()
    english = "Addresses on a private or local network cannot receive webhooks."
    detail = reverse("webhook-delivery-detail", kwargs={"delivery_id": delivery.pk})

    assert delivery.error == english
    alice.language = "en"
    alice.save(update_fields=["language"])
    assert english in login(alice).get(detail).content.decode()
    alice.language = "de"
    alice.save(update_fields=["language"])
    client = login(alice)
    for page in (client.get(detail), client.get("/settings/webhooks/deliveries/")):
        text = page.content.decode()
        assert "private or local network" not in text
        assert "privaten oder lokalen Netz" in text


def test_the_list_names_events_in_words(login, alice, hooked: Hooked):
    page = login(alice).get("/settings/webhooks/").content.decode()

    assert hooked.endpoint.url in page
    assert "Order placed" in page
    assert "order.placed" not in page
