"""Device management pages: rename, move, retire, notes, alert acknowledgement and snoozes, the
collector health page and the CSV import. Thin: parse, call one service or selector, render.

Who may do what (devices/fleet_services.py): reseller admins rename, move, retire and import;
reseller admins and support write notes and acknowledge or snooze alerts; customer users see
the fleet as before, with acknowledgements and snoozes marked. Another reseller's ids are not
found by the services: 404, nothing changed."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from devices import fleet_selectors, fleet_services, import_services, selectors
from devices.fleet_services import DEVICE_ADMIN_ROLES, FLEET_STAFF_ROLES
from devices.forms import (
    AlertSnoozeForm,
    ContractDecisionForm,
    DeviceImportForm,
    DeviceMoveConfirmForm,
    DeviceMoveForm,
    DeviceNoteForm,
    DeviceRenameForm,
)
from portal.errors import DomainError
from portal.pages import form_error
from portal.tenancy import tenant_view

SESSION_IMPORT_KEY = "inkmeter_device_import"


def _back(request: Any, fallback: str) -> HttpResponse:
    """To the page the form was on (`next`, same host only), else to `fallback`."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(fallback)


# --- Rename -------------------------------------------------------------------------------------


@tenant_view(*DEVICE_ADMIN_ROLES)
def device_rename(request: Any, device_id: int) -> HttpResponse:
    ctx = request.ctx
    device = fleet_selectors.device_get(ctx=ctx, device_id=device_id)
    form = DeviceRenameForm(request.POST or None, initial={"name": device.name})
    if request.method == "POST" and form.is_valid():
        try:
            fleet_services.device_rename(
                ctx=ctx, device_id=device.pk, name=form.cleaned_data["name"]
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, _("Name saved."))
            return redirect("device-detail", device_id=device.pk)
    return render(request, "devices/device_rename.html", {"device": device, "form": form})


# --- Move ---------------------------------------------------------------------------------------


@tenant_view(*DEVICE_ADMIN_ROLES)
def device_move(request: Any, device_id: int) -> HttpResponse:
    """Choose the site (GET, or POST without `confirm`), then confirm what happens to billing."""
    ctx = request.ctx
    device = fleet_selectors.device_get(ctx=ctx, device_id=device_id)
    sites = selectors.site_choices(ctx=ctx)
    if request.method == "POST" and "confirm" in request.POST:
        confirm = DeviceMoveConfirmForm(request.POST, sites=sites)
        if confirm.is_valid():
            data = confirm.cleaned_data
            try:
                fleet_services.device_move(
                    ctx=ctx,
                    device_id=device.pk,
                    site_id=data["site"].pk,
                    contract_action=data["contract_action"] or "",
                    effective_on=data["effective_on"],
                )
            except DomainError as error:
                if error.status == 404:
                    raise
                form_error(confirm, error)
            else:
                messages.success(
                    request,
                    _("Moved to %(customer)s / %(name)s.")
                    % {"customer": data["site"].customer.name, "name": data["site"].name},
                )
                return redirect("device-detail", device_id=device.pk)
        site = confirm.cleaned_data.get("site")
        if site is None:  # not one of this reseller's sites: back to the choice, with the error
            form = DeviceMoveForm(request.POST, sites=sites)
            return render(request, "devices/device_move.html", {"device": device, "form": form})
        plan = fleet_services.device_move_plan(ctx=ctx, device_id=device.pk, site_id=site.pk)
        return _move_confirmation(request, plan, confirm)
    form = DeviceMoveForm(request.POST or None, sites=sites)
    if request.method == "POST" and form.is_valid():
        site = form.cleaned_data["site"]
        if site.pk == device.site_id:
            form.add_error("site", _("The printer is at this site already."))
        else:
            plan = fleet_services.device_move_plan(ctx=ctx, device_id=device.pk, site_id=site.pk)
            confirm = DeviceMoveConfirmForm(
                sites=sites, initial={"site": site.pk, "effective_on": plan.effective_on}
            )
            return _move_confirmation(request, plan, confirm)
    return render(request, "devices/device_move.html", {"device": device, "form": form})


def _move_confirmation(
    request: Any, plan: fleet_services.DeviceMovePlan, form: DeviceMoveConfirmForm
) -> HttpResponse:
    return render(
        request,
        "devices/device_move_confirm.html",
        {"device": plan.device, "plan": plan, "form": form},
    )


# --- Retire -------------------------------------------------------------------------------------


@tenant_view(*DEVICE_ADMIN_ROLES)
def device_retire(request: Any, device_id: int) -> HttpResponse:
    ctx = request.ctx
    device, memberships = fleet_services.device_retire_plan(ctx=ctx, device_id=device_id)
    form = ContractDecisionForm(
        request.POST if request.method == "POST" else None,
        initial={"effective_on": fleet_services.today_utc()},
    )
    if request.method == "POST" and form.is_valid():
        try:
            fleet_services.device_retire(
                ctx=ctx,
                device_id=device.pk,
                contract_action=form.cleaned_data["contract_action"] or "",
                effective_on=form.cleaned_data["effective_on"],
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(
                request,
                _("%(device)s is retired; it no longer shows in the fleet.") % {"device": device},
            )
            return redirect("device-detail", device_id=device.pk)
    context = {"device": device, "memberships": memberships, "form": form}
    return render(request, "devices/device_retire.html", context)


@require_POST
@tenant_view(*DEVICE_ADMIN_ROLES)
def device_unretire(request: Any, device_id: int) -> HttpResponse:
    try:
        device = fleet_services.device_unretire(ctx=request.ctx, device_id=device_id)
    except DomainError as error:
        if error.status == 404:
            raise
        messages.error(request, error.message)
    else:
        messages.success(request, _("%(device)s is back in service.") % {"device": device})
    return redirect("device-detail", device_id=device_id)


# --- Notes --------------------------------------------------------------------------------------


@require_POST
@tenant_view(*FLEET_STAFF_ROLES)
def device_note_add(request: Any, device_id: int) -> HttpResponse:
    form = DeviceNoteForm(request.POST)
    body = form.cleaned_data["body"] if form.is_valid() else request.POST.get("body", "")
    try:
        fleet_services.device_note_add(ctx=request.ctx, device_id=device_id, body=body)
    except DomainError as error:
        if error.status == 404:
            raise
        messages.error(request, error.message)
    else:
        messages.success(request, _("Note added."))
    return redirect(reverse("device-detail", kwargs={"device_id": device_id}) + "#device-notes")


# --- Alerts -------------------------------------------------------------------------------------


def _alert_action(request: Any, action: Any, **kwargs: Any) -> HttpResponse:
    try:
        alert = action(ctx=request.ctx, **kwargs)
    except DomainError as error:
        if error.status == 404:
            raise
        messages.error(request, error.message)
        return _back(request, reverse("alert-list"))
    return _back(request, reverse("device-detail", kwargs={"device_id": alert.device_id}))


@require_POST
@tenant_view(*FLEET_STAFF_ROLES)
def alert_acknowledge(request: Any, alert_id: int) -> HttpResponse:
    return _alert_action(request, fleet_services.alert_acknowledge, alert_id=alert_id)


@require_POST
@tenant_view(*FLEET_STAFF_ROLES)
def alert_snooze(request: Any, alert_id: int) -> HttpResponse:
    form = AlertSnoozeForm(request.POST)
    # An unknown choice reaches the service as 0 hours, which it refuses with its message.
    hours = form.cleaned_data["hours"] if form.is_valid() else 0
    return _alert_action(request, fleet_services.alert_snooze, alert_id=alert_id, hours=hours)


@require_POST
@tenant_view(*FLEET_STAFF_ROLES)
def alert_unsnooze(request: Any, alert_id: int) -> HttpResponse:
    return _alert_action(request, fleet_services.alert_unsnooze, alert_id=alert_id)


# --- Collector health ---------------------------------------------------------------------------


@tenant_view(*FLEET_STAFF_ROLES)
def collector_health(request: Any) -> HttpResponse:
    collectors = selectors.collector_health_list(ctx=request.ctx)
    return render(request, "devices/collector_health.html", {"collectors": collectors})


# --- CSV import ---------------------------------------------------------------------------------


@tenant_view(*DEVICE_ADMIN_ROLES)
def device_import(request: Any) -> HttpResponse:
    """Upload (preview, nothing written), then confirm (everything written, or nothing)."""
    ctx = request.ctx
    if request.method == "POST" and "confirm" in request.POST:
        stored = request.session.get(SESSION_IMPORT_KEY) or {}
        data = str(stored.get("text", "")).encode()
        try:
            result = import_services.device_import_apply(
                ctx=ctx, data=data, digest=request.POST.get("digest", "")
            )
        except DomainError as error:
            messages.error(request, error.message)
            if stored:
                plan = import_services.device_import_preview(ctx=ctx, data=data)
                return _import_preview(request, plan)
            return redirect("device-import")
        request.session.pop(SESSION_IMPORT_KEY, None)
        messages.success(
            request,
            _(
                "Imported %(customers)s customer(s), %(sites)s site(s) and %(devices)s "
                "printer(s); %(unchanged)s printer(s) were there already."
            )
            % {
                "customers": result.customers,
                "sites": result.sites,
                "devices": result.devices,
                "unchanged": result.unchanged,
            },
        )
        return redirect("device-list")
    form = DeviceImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        data = upload.read(import_services.IMPORT_MAX_BYTES + 1)
        plan = import_services.device_import_preview(ctx=ctx, data=data)
        if plan.is_valid:
            # Kept for the confirmation only; the service validates it again before writing.
            # (UTF-8 both ways gives back the very bytes, byte order mark included.)
            request.session[SESSION_IMPORT_KEY] = {"text": data.decode("utf-8")}
        else:
            request.session.pop(SESSION_IMPORT_KEY, None)
        return _import_preview(request, plan)
    return render(request, "devices/device_import.html", {"form": form})


def _import_preview(request: Any, plan: import_services.ImportPlan) -> HttpResponse:
    status = 200 if plan.is_valid else 400
    return render(
        request,
        "devices/device_import_preview.html",
        {"plan": plan, "form": DeviceImportForm()},
        status=status,
    )
