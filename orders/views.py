"""Portal pages for orders, the catalog, reorder policies and the emails sent. Thin: parse,
call one service or selector, render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from orders import catalog_services, selectors, services, supply_services
from orders.forms import (
    OrderForm,
    PolicyForm,
    PreferenceForm,
    ProductForm,
    TransitionForm,
)
from orders.models import EmailLog, Order
from portal import csv_export
from portal.errors import DomainError, NotFoundError
from portal.pages import form_error, paginate
from portal.tenancy import ADMIN_ROLES, Role, tenant_view

STAFF = (Role.OPERATOR, Role.RESELLER_ADMIN, Role.RESELLER_SUPPORT)
ORDERING = (*STAFF, Role.CUSTOMER_ADMIN, Role.CUSTOMER_BUYER)
POLICY_EDITORS = (*STAFF, Role.CUSTOMER_ADMIN)


def _is_partial(request: Any) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def _order_filter(request: Any) -> selectors.OrderFilter:
    status = request.GET.get("status", "")
    return selectors.OrderFilter(
        status=status if status in Order.Status.values else "",
        search=request.GET.get("q", "").strip()[:100],
        is_queue=request.GET.get("queue") == "1",
    )


# --- Orders -----------------------------------------------------------------------------------


@tenant_view()
@vary_on_headers("HX-Request")
def order_list(request: Any) -> HttpResponse:
    f = _order_filter(request)
    page = paginate(request, selectors.order_list(ctx=request.ctx, f=f))
    context = {
        "page": page,
        "f": f,
        "statuses": Order.Status.choices,
        "is_filtered": f != selectors.OrderFilter(),
        "can_order": request.ctx.role in ORDERING,
    }
    template = "orders/_order_table.html" if _is_partial(request) else "orders/order_list.html"
    return render(request, template, context)


@tenant_view()
def order_export(request: Any) -> Any:  # a StreamingHttpResponse
    rows = selectors.order_export_rows(ctx=request.ctx, f=_order_filter(request))
    lines = csv_export.csv_lines(selectors.EXPORT_HEADER, rows)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    filename = f"orders-{now():%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@tenant_view(*ORDERING)
def order_create(request: Any) -> HttpResponse:
    ctx = request.ctx
    products = selectors.product_list(ctx=ctx, is_active=True)
    sites = selectors.site_choices(ctx=ctx)
    supply = None
    initial: dict[str, Any] = {"quantity": 1}
    supply_id = request.GET.get("supply_id") or request.POST.get("supply_id")
    if supply_id and str(supply_id).isdigit():
        supply = selectors.supply_get(ctx=ctx, supply_id=int(supply_id))
        forecast = getattr(supply, "forecast", None)
        initial |= {"supply_id": supply.pk, "site": supply.device.site_id}
        if forecast is not None and forecast.product_id:
            initial["product"] = forecast.product_id
    elif request.GET.get("product_id", "").isdigit():
        initial["product"] = int(request.GET["product_id"])
    form = OrderForm(request.POST or None, initial=initial, products=products, sites=sites)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            order = services.order_create(
                ctx=ctx,
                site_id=data["site"],
                lines=[
                    services.LineIn(
                        product_id=data["product"],
                        quantity=data["quantity"],
                        supply_id=data.get("supply_id"),
                    )
                ],
                source=Order.Source.SUGGESTED if data.get("supply_id") else Order.Source.CATALOG,
                note=data.get("note", ""),
                submit="place" in request.POST,
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(
                request,
                _("Order %(number)s is %(get_status_display)s.")
                % {"number": order.number, "get_status_display": order.get_status_display()},
            )
            return redirect("order-detail", order_id=order.pk)
    context = {"form": form, "supply": supply, "has_products": products.exists()}
    return render(request, "orders/order_form.html", context)


@tenant_view(*ORDERING)
def order_suggested(request: Any) -> HttpResponse:
    ctx = request.ctx
    if request.method == "POST":
        ids = [int(i) for i in request.POST.getlist("supply") if i.isdigit()]
        try:
            orders = services.orders_from_suggestions(
                ctx=ctx, supply_ids=ids, submit="place" in request.POST
            )
        except DomainError as error:
            messages.error(request, error.message)
        else:
            numbers = ", ".join(o.number for o in orders)
            messages.success(request, _("Ordered: %(numbers)s.") % {"numbers": numbers})
            if len(orders) == 1:
                return redirect("order-detail", order_id=orders[0].pk)
            return redirect("order-list")
    context = {
        "supplies": selectors.suggested_supply_list(ctx=ctx)[:200],
        "alerts": selectors.supply_alert_list(ctx=ctx)[:50],
    }
    return render(request, "orders/order_suggested.html", context)


@tenant_view()
def order_detail(request: Any, order_id: int) -> HttpResponse:
    ctx = request.ctx
    order = selectors.order_get(ctx=ctx, order_id=order_id)
    lines = list(selectors.order_line_list(ctx=ctx, order_id=order.pk))
    context = {
        "order": order,
        "lines": lines,
        "total": sum((line.line_total for line in lines), start=0),
        "events": selectors.order_event_list(ctx=ctx, order_id=order.pk),
        "steps": services.order_next_steps(ctx=ctx, order=order),
        "S": Order.Status,
        "emails": selectors.email_list(ctx=ctx, order_id=order.pk)[:20],
    }
    return render(request, "orders/order_detail.html", context)


@tenant_view()
@require_POST
def order_transition(request: Any, order_id: int) -> HttpResponse:
    ctx = request.ctx
    order = selectors.order_get(ctx=ctx, order_id=order_id)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a valid next step."))
        return redirect("order-detail", order_id=order.pk)
    data = form.cleaned_data
    try:
        if data["to"] == Order.Status.SUBMITTED and order.status == Order.Status.DRAFT:
            order = services.order_submit(ctx=ctx, order_id=order.pk)
        else:
            order = services.order_transition(
                ctx=ctx,
                order_id=order.pk,
                to=data["to"],
                note=data["note"],
                carrier=data["carrier"],
                tracking_number=data["tracking_number"],
            )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("Order %(number)s is %(get_status_display)s.")
            % {"number": order.number, "get_status_display": order.get_status_display()},
        )
    return redirect("order-detail", order_id=order.pk)


# --- Catalog ----------------------------------------------------------------------------------


@tenant_view(*STAFF)
@vary_on_headers("HX-Request")
def product_list(request: Any) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:100]
    page = paginate(request, selectors.product_list(ctx=request.ctx, search=search))
    context = {"page": page, "q": search, "can_edit": request.ctx.role in ADMIN_ROLES}
    template = "orders/_product_table.html" if _is_partial(request) else "orders/product_list.html"
    return render(request, template, context)


def _product_data(form: ProductForm) -> dict[str, Any]:
    data = dict(form.cleaned_data)
    data["compatible_models"] = data["compatible_models"].splitlines()
    return data


@tenant_view(*ADMIN_ROLES)
def product_create(request: Any) -> HttpResponse:
    form = ProductForm(request.POST or None, initial={"currency": "EUR", "is_active": True})
    if request.method == "POST" and form.is_valid():
        try:
            product = catalog_services.product_create(ctx=request.ctx, **_product_data(form))
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, _("%(sku)s added to the catalog.") % {"sku": product.sku})
            return redirect("product-list")
    return render(request, "orders/product_form.html", {"form": form})


@tenant_view(*ADMIN_ROLES)
def product_edit(request: Any, product_id: int) -> HttpResponse:
    product = selectors.product_get(ctx=request.ctx, product_id=product_id)
    initial = {f: getattr(product, f) for f in ProductForm.base_fields}
    initial["compatible_models"] = "\n".join(product.compatible_models)
    form = ProductForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            catalog_services.product_update(
                ctx=request.ctx, product_id=product.pk, **_product_data(form)
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, _("%(sku)s saved.") % {"sku": product.sku})
            return redirect("product-list")
    return render(request, "orders/product_form.html", {"form": form, "product": product})


@tenant_view(*STAFF)
def mapping_list(request: Any) -> HttpResponse:
    ctx = request.ctx
    context = {
        "page": paginate(request, selectors.unmatched_supply_list(ctx=ctx)),
        "products": selectors.product_list(ctx=ctx, is_active=True),
    }
    return render(request, "orders/mapping_list.html", context)


@tenant_view(*STAFF)
@require_POST
def mapping_create(request: Any, supply_id: int) -> HttpResponse:
    supply = selectors.supply_get(ctx=request.ctx, supply_id=supply_id)
    product_id = request.POST.get("product", "")
    if not product_id.isdigit():
        messages.error(request, _("Choose a product."))
        return redirect("mapping-list")
    catalog_services.mapping_remember(
        ctx=request.ctx, supply_id=supply.pk, product_id=int(product_id)
    )
    messages.success(request, _("Mapping remembered for every supply like this one."))
    return redirect("mapping-list")


# --- Policies, alerts, emails, preferences ------------------------------------------------------


@tenant_view(*POLICY_EDITORS)
def policy_list(request: Any) -> HttpResponse:
    ctx = request.ctx
    customers = selectors.customer_choices(ctx=ctx)
    devices = selectors.device_choices(ctx=ctx)
    initial: dict[str, Any] = {}
    if request.GET.get("policy_id", "").isdigit():
        policy = selectors.policy_get(ctx=ctx, policy_id=int(request.GET["policy_id"]))
        initial = {
            "customer": policy.customer_id,
            "device": policy.device_id,
            "threshold_percent": policy.threshold_percent,
            "lead_time_days": policy.lead_time_days,
            "mode": policy.mode,
            "requires_approval": policy.requires_approval,
        }
    form = PolicyForm(request.POST or None, initial=initial, customers=customers, devices=devices)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            catalog_services.policy_set(
                ctx=ctx,
                customer_id=data["customer"],
                device_id=data["device"],
                threshold_percent=data["threshold_percent"],
                lead_time_days=data["lead_time_days"],
                mode=data["mode"],
                requires_approval=data["requires_approval"],
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, _("Reorder policy saved."))
            return redirect("policy-list")
    context = {
        "form": form,
        "policies": selectors.policy_list(ctx=ctx),
        "customers_without": customers.exclude(
            pk__in=[p.customer_id for p in selectors.policy_list(ctx=ctx) if not p.device_id]
        ),
        "defaults": catalog_services.DEFAULT_POLICY,
    }
    return render(request, "orders/policy_list.html", context)


@tenant_view(*POLICY_EDITORS)
@require_POST
def policy_delete(request: Any, policy_id: int) -> HttpResponse:
    try:
        catalog_services.policy_delete(ctx=request.ctx, policy_id=policy_id)
    except NotFoundError:
        raise
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Device override removed; the customer policy applies."))
    return redirect("policy-list")


@tenant_view(*ORDERING)
@require_POST
def supply_alert_rearm(request: Any, supply_alert_id: int) -> HttpResponse:
    try:
        supply_services.supply_alert_rearm(ctx=request.ctx, alert_id=supply_alert_id)
    except NotFoundError:
        raise
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Alert re-armed: the next low reading emails again."))
    return redirect("order-suggested")


@tenant_view()
def replacement_list(request: Any) -> HttpResponse:
    page = paginate(request, selectors.replacement_list(ctx=request.ctx))
    return render(request, "orders/replacement_list.html", {"page": page})


@tenant_view()
def email_list(request: Any) -> HttpResponse:
    kind = request.GET.get("kind", "")
    if kind not in EmailLog.Kind.values:
        kind = ""
    page = paginate(request, selectors.email_list(ctx=request.ctx, kind=kind))
    context = {"page": page, "kind": kind, "kinds": EmailLog.Kind.choices}
    return render(request, "orders/email_list.html", context)


@tenant_view()
def email_detail(request: Any, email_id: int) -> HttpResponse:
    email = selectors.email_get(ctx=request.ctx, email_id=email_id)
    return render(request, "orders/email_detail.html", {"email": email})


@tenant_view()
def preference_edit(request: Any) -> HttpResponse:
    ctx = request.ctx
    form = PreferenceForm(request.POST or None, current=selectors.preference_map(ctx=ctx))
    if request.method == "POST" and form.is_valid():
        catalog_services.preferences_set(ctx=ctx, choices=form.cleaned_data)
        messages.success(request, _("Email preferences saved."))
        return redirect("preference-edit")
    return render(request, "orders/preference_form.html", {"form": form})


def low_supply_context(ctx: Any) -> dict[str, Any]:
    """The low-supply widget of the dashboard (accounts.views.dashboard renders it)."""
    return {
        "low_supply": selectors.low_supply_summary(ctx=ctx),
        "empty_within_days": selectors.EMPTY_WITHIN_DAYS,
    }
