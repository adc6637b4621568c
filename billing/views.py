"""Portal pages of plans, contracts and statements. Thin: parse, call one service or selector,
render."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import selectors as account_selectors
from billing import charts, exports, pdf_services, selectors, services, statement_services
from billing.forms import (
    ComputeForm,
    ContractEditForm,
    ContractForm,
    CorrectionForm,
    DeviceAddForm,
    DeviceLeaveForm,
    PlanForm,
    RateFormSet,
    TermsForm,
    terms_from,
    tiers_text,
)
from billing.models import Statement, StatementPdf
from portal import formatting
from portal.errors import DomainError
from portal.pages import form_error, paginate
from portal.tenancy import ADMIN_ROLES, CUSTOMER_ROLES, Role, tenant_view

FINANCE = (*ADMIN_ROLES, Role.RESELLER_FINANCE)
STATEMENT_READERS = (*FINANCE, *CUSTOMER_ROLES)


def _month(value: str) -> date | None:
    try:
        return date.fromisoformat(f"{value}-01") if value else None
    except ValueError:
        return None


# --- Plans -----------------------------------------------------------------------------------


@tenant_view(*FINANCE)
def plan_list(request: Any) -> HttpResponse:
    page = paginate(request, selectors.plan_list(ctx=request.ctx))
    return render(request, "billing/plan_list.html", {"page": page})


@tenant_view(*FINANCE)
def plan_create(request: Any) -> HttpResponse:
    form = PlanForm(request.POST or None)
    rates = RateFormSet(request.POST or None, prefix="rates")
    if request.method == "POST" and form.is_valid() and rates.is_valid():
        try:
            plan = services.plan_create(
                ctx=request.ctx,
                name=form.cleaned_data["name"],
                currency=form.cleaned_data["currency"],
                description=form.cleaned_data["description"],
                terms=terms_from(form, rates),
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, _("Plan %(plan)s created.") % {"plan": plan.name})
            return redirect("plan-detail", plan_id=plan.pk)
    return render(request, "billing/plan_form.html", {"form": form, "rates": rates})


@tenant_view(*FINANCE)
def plan_detail(request: Any, plan_id: int) -> HttpResponse:
    plan = selectors.plan_get(ctx=request.ctx, plan_id=plan_id)
    return render(request, "billing/plan_detail.html", {"plan": plan})


@tenant_view(*FINANCE)
def plan_revise(request: Any, plan_id: int) -> HttpResponse:
    plan = selectors.plan_get(ctx=request.ctx, plan_id=plan_id)
    current = plan.versions.all()[0] if plan.versions.all() else None
    initial: dict[str, Any] = {}
    rate_initial: list[dict[str, Any]] = []
    if current is not None:
        initial = {
            "monthly_fee_per_device": current.monthly_fee_per_device,
            "minimum_monthly": current.minimum_monthly,
            "tax_rate": current.tax_rate,
        }
        rate_initial = [
            {
                "counter": r.counter,
                "media_type": r.media_type,
                "color": r.color,
                "mode": r.mode,
                "scope": r.scope,
                "included_units": r.included_units,
                "tiers": tiers_text(r.tiers.all()),
            }
            for r in current.rates.all()
        ]
    form = TermsForm(request.POST or None, initial=initial)
    rates = RateFormSet(request.POST or None, prefix="rates", initial=rate_initial)
    if request.method == "POST" and form.is_valid() and rates.is_valid():
        try:
            version = services.plan_revise(
                ctx=request.ctx, plan_id=plan.pk, terms=terms_from(form, rates)
            )
        except DomainError as error:
            if error.status == 404:
                raise
            form_error(form, error)
        else:
            messages.success(
                request,
                _("Version %(number)s applies from %(date)s.")
                % {"number": version.number, "date": formatting.date(version.effective_from)},
            )
            return redirect("plan-detail", plan_id=plan.pk)
    return render(request, "billing/plan_form.html", {"form": form, "rates": rates, "plan": plan})


# --- Contracts ---------------------------------------------------------------------------------


@tenant_view(*FINANCE)
def contract_list(request: Any) -> HttpResponse:
    page = paginate(request, selectors.contract_list(ctx=request.ctx))
    return render(request, "billing/contract_list.html", {"page": page})


@tenant_view(*FINANCE)
def contract_create(request: Any) -> HttpResponse:
    ctx = request.ctx
    form = ContractForm(
        request.POST or None,
        customers=account_selectors.customer_list(ctx=ctx),
        plans=selectors.plan_list(ctx=ctx),
        initial={"customer": request.GET.get("customer")},
    )
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        customer, plan = data.pop("customer"), data.pop("plan")
        try:
            contract = services.contract_create(
                ctx=ctx, customer_id=customer.pk, plan_id=plan.pk, **data
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(
                request, _("Contract %(reference)s created.") % {"reference": contract.reference}
            )
            return redirect("contract-detail", contract_id=contract.pk)
    return render(request, "billing/contract_form.html", {"form": form})


@tenant_view(*FINANCE)
def contract_detail(request: Any, contract_id: int) -> HttpResponse:
    ctx = request.ctx
    contract = selectors.contract_get(ctx=ctx, contract_id=contract_id)
    context = {
        "contract": contract,
        "memberships": selectors.contract_device_list(ctx=ctx, contract_id=contract.pk),
        "corrections": selectors.correction_list(ctx=ctx, contract_id=contract.pk)[:20],
        "statements": selectors.statement_list(
            ctx=ctx, f=selectors.StatementFilter(contract_id=contract.pk)
        )[:24],
        "add_form": DeviceAddForm(
            devices=selectors.contract_assignable_devices(ctx=ctx, contract=contract),
            initial={"joined_on": now().date()},
        ),
        "compute_form": ComputeForm(initial={"period_start": now().date()}),
    }
    return render(request, "billing/contract_detail.html", context)


@tenant_view(*FINANCE)
def contract_edit(request: Any, contract_id: int) -> HttpResponse:
    contract = selectors.contract_get(ctx=request.ctx, contract_id=contract_id)
    initial = {
        "purchase_order": contract.purchase_order,
        "ends_on": contract.ends_on,
        "missing_data": contract.missing_data,
    }
    form = ContractEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.contract_update(ctx=request.ctx, contract_id=contract.pk, **form.cleaned_data)
        except DomainError as error:
            if error.status == 404:
                raise
            form_error(form, error)
        else:
            messages.success(request, _("Contract saved."))
            return redirect("contract-detail", contract_id=contract.pk)
    return render(request, "billing/contract_form.html", {"form": form, "contract": contract})


@require_POST
@tenant_view(*FINANCE)
def contract_device_add(request: Any, contract_id: int) -> HttpResponse:
    ctx = request.ctx
    contract = selectors.contract_get(ctx=ctx, contract_id=contract_id)
    form = DeviceAddForm(
        request.POST, devices=selectors.contract_assignable_devices(ctx=ctx, contract=contract)
    )
    if not form.is_valid():
        messages.error(request, _("Choose a printer and the day it is billed from."))
        return redirect("contract-detail", contract_id=contract.pk)
    try:
        membership = services.contract_device_add(
            ctx=ctx,
            contract_id=contract.pk,
            device_id=form.cleaned_data["device"].pk,
            joined_on=form.cleaned_data["joined_on"],
        )
    except DomainError as error:
        if error.status == 404:
            raise
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _("%(device)s joins on %(date)s.")
            % {"device": membership.device, "date": formatting.date(membership.joined_on)},
        )
    return redirect("contract-detail", contract_id=contract.pk)


@tenant_view(*FINANCE)
def contract_device_leave(request: Any, contract_device_id: int) -> HttpResponse:
    membership = selectors.contract_device_get(
        ctx=request.ctx, contract_device_id=contract_device_id
    )
    form = DeviceLeaveForm(request.POST or None, initial={"left_on": now().date()})
    if request.method == "POST" and form.is_valid():
        try:
            services.contract_device_remove(
                ctx=request.ctx,
                contract_device_id=membership.pk,
                left_on=form.cleaned_data["left_on"],
            )
        except DomainError as error:
            if error.status == 404:
                raise
            form_error(form, error)
        else:
            messages.success(
                request, _("%(device)s leaves the contract.") % {"device": membership.device}
            )
            return redirect("contract-detail", contract_id=membership.contract_id)
    return render(request, "billing/device_leave.html", {"form": form, "membership": membership})


@require_POST
@tenant_view(*FINANCE)
def contract_compute(request: Any, contract_id: int) -> HttpResponse:
    contract = selectors.contract_get(ctx=request.ctx, contract_id=contract_id)
    form = ComputeForm(request.POST)
    if not form.is_valid():
        problems = form.errors.get("period_start") or ["Give a day of the period to compute."]
        messages.error(request, " ".join(str(problem) for problem in problems))
        return redirect("contract-detail", contract_id=contract.pk)
    try:
        statement = statement_services.statement_compute(
            ctx=request.ctx, contract_id=contract.pk, period_start=form.cleaned_data["period_start"]
        )
    except DomainError as error:
        if error.status == 404:
            raise
        messages.error(request, error.message)
        return redirect("contract-detail", contract_id=contract.pk)
    messages.success(request, _("Draft computed from the readings stored now."))
    return redirect("statement-detail", statement_id=statement.pk)


@tenant_view(*FINANCE)
def correction_create(request: Any, device_id: int) -> HttpResponse:
    device = selectors.device_get(ctx=request.ctx, device_id=device_id)
    form = CorrectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.correction_create(ctx=request.ctx, device_id=device.pk, **form.cleaned_data)
        except DomainError as error:
            if error.status == 404:
                raise
            form_error(form, error)
        else:
            messages.success(request, _("Correction recorded; drafts pick it up when recomputed."))
            following = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(
                following, allowed_hosts={request.get_host()}, require_https=request.is_secure()
            ):
                following = "contract-list"
            return redirect(following)
    return render(request, "billing/correction_form.html", {"form": form, "device": device})


# --- Statements --------------------------------------------------------------------------------


@tenant_view(*STATEMENT_READERS)
def statement_list(request: Any) -> HttpResponse:
    ctx = request.ctx
    month = _month(request.GET.get("month", ""))
    status = request.GET.get("status", "")
    status = status if status in Statement.Status.values else ""
    statements = selectors.statement_list(
        ctx=ctx, f=selectors.StatementFilter(month=month, status=status)
    )
    context = {
        "page": paginate(request, statements),
        "totals": selectors.statement_totals(statements=statements),
        "month": request.GET.get("month", "") if month else "",
        "status": status,
        "statuses": Statement.Status.choices,
    }
    return render(request, "billing/statement_list.html", context)


def _statement_context(request: Any, statement_id: int) -> dict[str, Any]:
    ctx = request.ctx
    statement = selectors.statement_get(ctx=ctx, statement_id=statement_id)
    lines = list(selectors.statement_lines(ctx=ctx, statement=statement))
    return {
        "statement": statement,
        "lines": lines,
        "reseller": ctx.reseller,
        "sites": selectors.statement_sites(ctx=ctx, statement=statement),
        "adjustments": selectors.statement_adjustments(ctx=ctx, statement=statement),
    }


@tenant_view(*STATEMENT_READERS)
def statement_detail(request: Any, statement_id: int) -> HttpResponse:
    context = _statement_context(request, statement_id)
    statement, lines = context["statement"], context["lines"]
    devices = charts.device_groups(lines)
    page = paginate(request, devices, per_page=20)
    daily = selectors.statement_daily_usage(
        ctx=request.ctx, statement=statement, device_ids=[g.device.pk for g in page]
    )
    context |= {
        "page": page,
        "charts": {g.device.pk: charts.device_usage_charts(g, daily) for g in page},
        "can_finalise": request.ctx.role in FINANCE and not statement.is_final,
        "can_adjust": request.ctx.role in FINANCE
        and statement.is_final
        and statement.kind == Statement.Kind.REGULAR,
    }
    return render(request, "billing/statement_detail.html", context)


@tenant_view(*FINANCE)
def statement_finalise(request: Any, statement_id: int) -> HttpResponse:
    statement = selectors.statement_get(ctx=request.ctx, statement_id=statement_id)
    if request.method == "POST":
        try:
            statement = statement_services.statement_finalise(
                ctx=request.ctx, statement_id=statement.pk, by=request.user
            )
        except DomainError as error:
            if error.status == 404:
                raise
            messages.error(request, error.message)
        else:
            messages.success(
                request, _("Statement No. %(number)s is final.") % {"number": statement.number}
            )
        return redirect("statement-detail", statement_id=statement.pk)
    return render(request, "billing/statement_finalise.html", {"statement": statement})


@require_POST
@tenant_view(*FINANCE)
def statement_adjust(request: Any, statement_id: int) -> HttpResponse:
    try:
        adjustment = statement_services.statement_adjust(ctx=request.ctx, statement_id=statement_id)
    except DomainError as error:
        if error.status == 404:
            raise
        messages.error(request, error.message)
        return redirect("statement-detail", statement_id=statement_id)
    messages.success(request, _("Adjustment drafted: review it, then finalise it."))
    return redirect("statement-detail", statement_id=adjustment.pk)


def statement_filename(statement: Statement, extension: str) -> str:
    label = f"{statement.number:06d}" if statement.number else f"draft-{statement.pk}"
    return f"statement-{label}-{statement.period_start:%Y-%m}.{extension}"


@tenant_view(*STATEMENT_READERS)
def statement_csv(request: Any, statement_id: int) -> Any:
    context = _statement_context(request, statement_id)
    statement = context["statement"]
    rows = exports.statement_csv_rows(statement, context["lines"])
    response = StreamingHttpResponse(
        exports.csv_lines(exports.STATEMENT_COLUMNS, rows), content_type="text/csv"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="{statement_filename(statement, "csv")}"'
    )
    return response


@tenant_view(*STATEMENT_READERS)
def statement_pdf(request: Any, statement_id: int) -> HttpResponse:
    """The PDF at once for a small statement; for a big one, a page that shows the state of its
    rendering on the `pdf` queue and offers the download when it is ready."""
    context = _statement_context(request, statement_id)
    statement = context["statement"]
    if pdf_services.statement_pdf_is_inline(context["lines"]):
        return _pdf_response(statement, pdf_services.statement_pdf_render_now(context))
    document = pdf_services.statement_pdf_request(
        ctx=request.ctx,
        statement=statement,
        retry=request.GET.get("retry") == "1" and not request.htmx,
    )
    state = {"statement": statement, "document": document}
    if request.htmx:  # the page polling: never the PDF itself, it would land in the page
        return render(request, "billing/_statement_pdf_state.html", state)
    if document.status == StatementPdf.Status.READY:
        return _pdf_response(statement, pdf_services.statement_pdf_content(document))
    return render(request, "billing/statement_pdf_state.html", state, status=202)


def _pdf_response(statement: Statement, pdf: bytes) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{statement_filename(statement, "pdf")}"'
    return response


@tenant_view(*FINANCE)
def usage_export(request: Any) -> Any:
    month = _month(request.GET.get("month", ""))
    if month is None:
        return HttpResponse("Give ?month=YYYY-MM.", status=400, content_type="text/plain")
    status = request.GET.get("status", Statement.Status.FINAL)
    status = status if status in Statement.Status.values else Statement.Status.FINAL
    rows = selectors.usage_export_rows(
        ctx=request.ctx, f=selectors.UsageExportFilter(month=month, status=status)
    )
    response = StreamingHttpResponse(exports.usage_csv(rows), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="usage-{month:%Y-%m}-{status}.csv"'
    return response
