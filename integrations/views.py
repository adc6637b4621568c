"""Portal pages of webhooks, for reseller admins: endpoints, a test event, the delivery log."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from integrations import selectors, services
from integrations.forms import DeliveryFilterForm, WebhookEndpointForm
from integrations.models import WebhookDelivery, WebhookEndpoint
from portal.errors import DomainError
from portal.pages import form_error, paginate
from portal.tenancy import ADMIN_ROLES, tenant_view


def _secret_page(request: Any, endpoint: WebhookEndpoint, secret: str, verb: str) -> HttpResponse:
    """The one time a secret is shown: in the answer to the POST that made it."""
    context = {"endpoint": endpoint, "secret": secret, "verb": verb}
    return render(request, "integrations/webhook_secret.html", context)


@tenant_view(*ADMIN_ROLES)
def webhook_endpoint_list(request: Any) -> HttpResponse:
    endpoints = selectors.webhook_endpoint_list(ctx=request.ctx)
    return render(request, "integrations/webhook_list.html", {"endpoints": endpoints})


@tenant_view(*ADMIN_ROLES)
def webhook_endpoint_create(request: Any) -> HttpResponse:
    form = WebhookEndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            endpoint, secret = services.webhook_endpoint_create(
                ctx=request.ctx,
                url=data["url"],
                events=data["events"],
                description=data["description"],
                is_active=data["is_active"],
            )
        except DomainError as error:
            form_error(form, error)
        else:
            return _secret_page(request, endpoint, secret, "created")
    return render(request, "integrations/webhook_form.html", {"form": form, "endpoint": None})


@tenant_view(*ADMIN_ROLES)
def webhook_endpoint_edit(request: Any, endpoint_id: int) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_get(ctx=request.ctx, endpoint_id=endpoint_id)
    initial = {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "is_active": endpoint.is_active,
    }
    form = WebhookEndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.webhook_endpoint_update(
                ctx=request.ctx,
                endpoint_id=endpoint.pk,
                url=data["url"],
                events=data["events"],
                description=data["description"],
                is_active=data["is_active"],
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, _("Webhook endpoint saved."))
            return redirect("webhook-list")
    return render(request, "integrations/webhook_form.html", {"form": form, "endpoint": endpoint})


@require_POST
@tenant_view(*ADMIN_ROLES)
def webhook_endpoint_rotate(request: Any, endpoint_id: int) -> HttpResponse:
    endpoint, secret = services.webhook_endpoint_rotate(ctx=request.ctx, endpoint_id=endpoint_id)
    return _secret_page(request, endpoint, secret, "rotated")


@require_POST
@tenant_view(*ADMIN_ROLES)
def webhook_test_send(request: Any, endpoint_id: int) -> HttpResponse:
    delivery = services.webhook_test_send(ctx=request.ctx, endpoint_id=endpoint_id)
    messages.success(request, _("Test event sent; its outcome is below."))
    return redirect(reverse("webhook-delivery-detail", kwargs={"delivery_id": delivery.pk}))


@tenant_view(*ADMIN_ROLES)
def webhook_delivery_list(request: Any) -> HttpResponse:
    ctx = request.ctx
    form = DeliveryFilterForm(request.GET or None)
    status = form.cleaned_data["status"] if form.is_valid() else ""
    endpoint = None
    endpoint_param = request.GET.get("endpoint", "")
    if endpoint_param.isdigit():
        endpoint = selectors.webhook_endpoint_get(ctx=ctx, endpoint_id=int(endpoint_param))
    deliveries = selectors.webhook_delivery_list(
        ctx=ctx, endpoint_id=endpoint.pk if endpoint else None, status=status
    )
    context = {
        "page": paginate(request, deliveries),
        "form": form,
        "endpoint": endpoint,
        "status": status,
        "statuses": WebhookDelivery.Status.choices,
    }
    return render(request, "integrations/delivery_list.html", context)


@tenant_view(*ADMIN_ROLES)
def webhook_delivery_detail(request: Any, delivery_id: int) -> HttpResponse:
    delivery = selectors.webhook_delivery_get(ctx=request.ctx, delivery_id=delivery_id)
    body = services.webhook_body(delivery.payload).decode()
    return render(
        request, "integrations/delivery_detail.html", {"delivery": delivery, "body": body}
    )


@require_POST
@tenant_view(*ADMIN_ROLES)
def webhook_redeliver(request: Any, delivery_id: int) -> HttpResponse:
    try:
        delivery = services.webhook_redeliver(ctx=request.ctx, delivery_id=delivery_id)
    except DomainError as error:
        if error.status == 404:
            raise
        messages.error(request, error.message)
        return redirect(reverse("webhook-delivery-detail", kwargs={"delivery_id": delivery_id}))
    messages.success(request, _("The event is being sent again."))
    return redirect(reverse("webhook-delivery-detail", kwargs={"delivery_id": delivery.pk}))
