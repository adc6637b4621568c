"""Portal pages for collectors and direct-connect credentials. Thin: parse, call one service or
selector, render. Nothing here can change a printer: only the collector's configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import selectors as account_selectors
from devices import selectors, services
from devices.forms import CollectorConfigForm, CredentialForm, RotateForm, TelemetryPolicyForm
from devices.models import Credential, TelemetryPolicy
from portal.errors import DomainError
from portal.pages import form_error, paginate
from portal.tenancy import ADMIN_ROLES, tenant_view


@tenant_view(*ADMIN_ROLES)
def credential_list(request: Any) -> HttpResponse:
    page = paginate(request, selectors.credential_list(ctx=request.ctx))
    return render(request, "devices/credential_list.html", {"page": page})


def _created_context(credential: Credential, secret: str) -> dict[str, Any]:
    return {"credential": credential, "secret": secret, "url": settings.SITE_URL}


@tenant_view(*ADMIN_ROLES)
def credential_create(request: Any) -> HttpResponse:
    ctx = request.ctx
    form = CredentialForm(
        request.POST or None,
        sites=selectors.site_choices(ctx=ctx),
        initial={"kind": request.GET.get("kind", Credential.Kind.COLLECTOR)},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            credential, secret = services.credential_create(
                ctx=ctx,
                kind=data["kind"],
                name=data["name"],
                site_id=data["site"].pk if data["site"] else None,
                serial=data["serial"],
            )
        except DomainError as error:
            form_error(form, error)
        else:
            # Rendered, not redirected: the secret exists only in this response.
            return render(
                request, "devices/credential_secret.html", _created_context(credential, secret)
            )
    return render(request, "devices/credential_form.html", {"form": form})


@tenant_view(*ADMIN_ROLES)
def credential_detail(request: Any, credential_id: int) -> HttpResponse:
    ctx = request.ctx
    credential = selectors.credential_get(ctx=ctx, credential_id=credential_id)
    context = {
        "credential": credential,
        "failures": selectors.auth_failure_list(ctx=ctx, credential_id=credential.pk)[:20],
        "config": services.collector_config(credential)
        if credential.kind == Credential.Kind.COLLECTOR
        else None,
        "rotate_form": RotateForm(),
    }
    return render(request, "devices/credential_detail.html", context)


@require_POST
@tenant_view(*ADMIN_ROLES)
def credential_rotate(request: Any, credential_id: int) -> HttpResponse:
    credential = selectors.credential_get(ctx=request.ctx, credential_id=credential_id)
    form = RotateForm(request.POST)
    if form.is_valid():
        try:
            credential, secret = services.credential_rotate(
                ctx=request.ctx,
                credential_id=credential.pk,
                grace_hours=form.cleaned_data["grace_hours"],
            )
        except DomainError as error:
            messages.error(request, error.message)
        else:
            context = _created_context(credential, secret) | {"rotated": True}
            return render(request, "devices/credential_secret.html", context)
    else:
        messages.error(request, _("The grace period is 0 to 720 hours."))
    return redirect("credential-detail", credential_id=credential.pk)


@require_POST
@tenant_view(*ADMIN_ROLES)
def credential_revoke(request: Any, credential_id: int) -> HttpResponse:
    try:
        credential = services.credential_revoke(ctx=request.ctx, credential_id=credential_id)
    except DomainError as error:
        if error.status == 404:
            raise
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("%(credential)s revoked: its requests are refused now.")
            % {"credential": credential.name},
        )
    return redirect("credential-detail", credential_id=credential_id)


@tenant_view(*ADMIN_ROLES)
def collector_config_edit(request: Any, credential_id: int) -> HttpResponse:
    ctx = request.ctx
    credential = selectors.credential_get(ctx=ctx, credential_id=credential_id)
    if credential.kind != Credential.Kind.COLLECTOR:
        messages.error(request, _("Only collectors have a configuration."))
        return redirect("credential-detail", credential_id=credential.pk)
    form = CollectorConfigForm(request.POST or None, initial=services.collector_config(credential))
    if request.method == "POST" and form.is_valid():
        try:
            credential = services.collector_config_update(
                ctx=ctx, credential_id=credential.pk, **form.cleaned_data
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(
                request,
                _(
                    "Configuration saved (version %(config_version)s); "
                    "the collector applies it at its next check."
                )
                % {"config_version": credential.config_version},
            )
            return redirect("credential-detail", credential_id=credential.pk)
    return render(
        request, "devices/collector_config_form.html", {"form": form, "credential": credential}
    )


@tenant_view(*ADMIN_ROLES)
def telemetry_policy_edit(request: Any, customer_id: int) -> HttpResponse:
    ctx = request.ctx
    customer = account_selectors.customer_get(ctx=ctx, customer_id=customer_id)
    policy = selectors.telemetry_policy_get(ctx=ctx, customer_id=customer.pk)
    initial = {
        "job_names": policy.job_names if policy else TelemetryPolicy.Personal.HASH,
        "user_names": policy.user_names if policy else TelemetryPolicy.Personal.HASH,
    }
    form = TelemetryPolicyForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.telemetry_policy_update(ctx=ctx, customer_id=customer.pk, **form.cleaned_data)
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, _("Privacy settings saved; they apply to new job reports."))
            return redirect("customer-detail", customer_id=customer.pk)
    return render(
        request, "devices/telemetry_policy_form.html", {"form": form, "customer": customer}
    )
