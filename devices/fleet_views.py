"""The fleet pages: device list and detail, supplies, open alerts. Thin: parse the query string,
call selectors, render. An htmx request for a list gets only its table, so filtering and
paging swap the table in place; the same URL without htmx renders the whole page."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import dateformat
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.vary import vary_on_headers

from devices import charts, fleet_selectors, selectors
from devices.fleet_selectors import DeviceFilter, DeviceStatus, Lifecycle, SupplyFilter
from devices.fleet_services import DEVICE_ADMIN_ROLES, FLEET_STAFF_ROLES
from devices.forms import SNOOZE_CHOICES, DeviceNoteForm
from devices.models import Alert
from portal import labels
from portal.pages import Listing, paginate
from portal.tenancy import tenant_view

# The charts of the device page and the dashboard: a point or bar per day.
HISTORY_DAYS = 30
# Devices raise and clear the same alert many times; the detail shows the last few episodes.
CLEARED_ALERTS = 5


def _sort_choices(keys: Any) -> list[tuple[str, str]]:
    return [(key, key) for key in keys] + [(f"-{key}", f"-{key}") for key in keys]


class DeviceFilterForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Search"), required=False, max_length=100)
    # Ids checked against the tenant's customers and sites in device_filter: a choice field
    # would normalise a reseller's hundreds of options twice per request.
    customer = forms.IntegerField(label=gettext_lazy("Customer"), required=False)
    site = forms.IntegerField(label=gettext_lazy("Site"), required=False)
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("Any status")), *DeviceStatus.choices],
    )
    model = forms.ChoiceField(label=gettext_lazy("Model"), required=False)
    low = forms.BooleanField(label=gettext_lazy("Low supplies"), required=False)
    lifecycle = forms.ChoiceField(
        label=gettext_lazy("In service"), required=False, choices=Lifecycle.choices
    )
    sort = forms.ChoiceField(
        label=gettext_lazy("Sort"),
        required=False,
        choices=_sort_choices(fleet_selectors.DEVICE_SORTS),
    )

    def __init__(
        self,
        *args: Any,
        customers: list[tuple[int, str]],
        sites: list[tuple[int, str]],
        models: list[str],
        **kw: Any,
    ):
        super().__init__(*args, **kw)
        self.customer_choices: list[tuple[Any, str]] = [("", _("All customers")), *customers]
        self.site_choices: list[tuple[Any, str]] = [("", _("All sites")), *sites]
        self._known = {"customer": {pk for pk, _ in customers}, "site": {pk for pk, _ in sites}}
        field: Any = self.fields["model"]
        field.choices = [("", _("All models")), *((m, m) for m in models)]

    def device_filter(self) -> DeviceFilter:
        # Parameters that do not parse are ignored rather than refused: a stale link still works.
        self.is_valid()
        data = self.cleaned_data
        customer, site = data.get("customer"), data.get("site")
        return DeviceFilter(
            lifecycle=data.get("lifecycle") or Lifecycle.ACTIVE,
            customer_id=customer if customer in self._known["customer"] else None,
            site_id=site if site in self._known["site"] else None,
            status=data.get("status") or "",
            model=data.get("model") or "",
            is_low_supply=bool(data.get("low")),
            search=data.get("q") or "",
            sort=data.get("sort") or "serial",
        )


def _sort_links(current: str, keys: Any) -> dict[str, dict[str, str]]:
    """Per column: the sort a click on its header asks for, and the arrow it shows now."""
    links = {}
    for key in keys:
        if current == key:
            links[key] = {"next": f"-{key}", "arrow": "▲", "aria": "ascending"}
        elif current == f"-{key}":
            links[key] = {"next": key, "arrow": "▼", "aria": "descending"}
        else:
            links[key] = {"next": key, "arrow": "", "aria": "none"}
    return links


def _is_low(percent: float | None) -> bool:
    return percent is not None and percent < fleet_selectors.LOW_SUPPLY_PERCENT


def _is_partial(request: Any) -> bool:
    """An htmx swap of the table; a history restore needs the whole page back."""
    return bool(request.htmx) and not request.htmx.history_restore_request


@tenant_view()
@vary_on_headers("HX-Request")
def device_list(request: Any) -> HttpResponse:
    ctx = request.ctx
    customers = fleet_selectors.customer_choices(ctx=ctx) if ctx.is_reseller_wide else []
    form = DeviceFilterForm(
        request.GET,
        customers=customers,
        sites=fleet_selectors.site_choices(ctx=ctx),
        models=fleet_selectors.device_model_choices(ctx=ctx),
    )
    f = form.device_filter()
    page = paginate(request, fleet_selectors.device_list(ctx=ctx, f=f))
    context = {
        "page": page,
        "form": form,
        "f": f,
        "is_filtered": f != DeviceFilter(sort=f.sort),
        "sorts": _sort_links(f.sort, fleet_selectors.DEVICE_SORTS),
        "low_percent": fleet_selectors.LOW_SUPPLY_PERCENT,
        "can_import": ctx.role in DEVICE_ADMIN_ROLES,
    }
    template = "devices/_device_table.html" if _is_partial(request) else "devices/device_list.html"
    return render(request, template, context)


@tenant_view()
def device_detail(request: Any, device_id: int) -> HttpResponse:
    ctx = request.ctx
    device = fleet_selectors.device_get(ctx=ctx, device_id=device_id)
    supplies = list(device.supplies.all())  # prefetched by the selector, in supply_key order
    css_classes = charts.supply_css_classes([supply.color for supply in supplies])
    since = now().astimezone(UTC).date() - timedelta(days=HISTORY_DAYS - 1)
    history = fleet_selectors.device_supply_history(ctx=ctx, device_id=device.pk, since=since)
    series = [
        charts.Series(
            label=labels.supply_label(supply),
            points=history.get(supply.pk, []),
            css_class=css_class,
        )
        for supply, css_class in zip(supplies, css_classes, strict=True)
    ]
    pages = fleet_selectors.device_pages_by_day(ctx=ctx, device_id=device.pk, days=HISTORY_DAYS)
    context = {
        "device": device,
        "supplies": [
            {"supply": supply, "css_class": css_class, "is_low": _is_low(supply.percent)}
            for supply, css_class in zip(supplies, css_classes, strict=True)
        ],
        "counters": fleet_selectors.device_counter_list(ctx=ctx, device_id=device.pk),
        "supply_chart": charts.line_chart(
            series,
            title=_("Supply levels, last %(days)s days") % {"days": HISTORY_DAYS},
            y_max=100,
            unit="%",
            empty=_("No supply readings in the last 30 days"),
        ),
        "pages_chart": charts.bar_chart(
            [charts.Bar(dateformat.format(day, "d M"), n, "bar-pages") for day, n in pages.items()],
            title=_("Pages per day, last %(days)s days") % {"days": HISTORY_DAYS},
            label_every=7,
            empty=_("No pages counted in the last 30 days"),
        ),
        "pages_total": sum(pages.values()),
        "open_alerts": fleet_selectors.device_alert_list(
            ctx=ctx, device_id=device.pk, is_open=True
        ),
        "cleared_alerts": fleet_selectors.device_alert_list(
            ctx=ctx, device_id=device.pk, is_open=False
        )[:CLEARED_ALERTS],
        "jobs": fleet_selectors.device_job_list(ctx=ctx, device_id=device.pk)[:20],
        "low_percent": fleet_selectors.LOW_SUPPLY_PERCENT,
        "now": now(),
        "can_manage": ctx.role in DEVICE_ADMIN_ROLES,
        "is_fleet_staff": ctx.role in FLEET_STAFF_ROLES,
        "snooze_choices": SNOOZE_CHOICES,
    }
    if ctx.role in FLEET_STAFF_ROLES:
        # Notes are the reseller's own: customer users do not see them.
        context["notes"] = selectors.device_note_list(ctx=ctx, device_id=device.pk)[:50]
        context["note_form"] = DeviceNoteForm()
    return render(request, "devices/device_detail.html", context)


class SupplyFilterForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), required=False)
    color = forms.ChoiceField(label=gettext_lazy("Colour"), required=False)
    low = forms.BooleanField(label=gettext_lazy("Low"), required=False)
    reorder = forms.BooleanField(label=gettext_lazy("At reorder point"), required=False)
    days = forms.IntegerField(
        label=gettext_lazy("Empty within (days)"), required=False, min_value=0, max_value=3650
    )
    sort = forms.ChoiceField(
        label=gettext_lazy("Sort"),
        required=False,
        choices=_sort_choices(fleet_selectors.SUPPLY_SORTS),
    )

    def __init__(self, *args: Any, kinds: list[str], colors: list[str], **kw: Any):
        super().__init__(*args, **kw)
        field: Any = self.fields["kind"]
        field.choices = [
            ("", _("All kinds")),
            *((k, labels.supply_kind_label(k).capitalize()) for k in kinds),
        ]
        field = self.fields["color"]
        field.choices = [("", _("All colours")), *((c, c.capitalize()) for c in colors)]

    def supply_filter(self) -> SupplyFilter:
        self.is_valid()
        data = self.cleaned_data
        return SupplyFilter(
            kind=data.get("kind") or "",
            color=data.get("color") or "",
            is_low=bool(data.get("low")),
            is_at_reorder_point=bool(data.get("reorder")),
            empties_within_days=data.get("days"),
            sort=data.get("sort") or "level",
        )


@tenant_view()
@vary_on_headers("HX-Request")
def supply_list(request: Any) -> HttpResponse:
    ctx = request.ctx
    kinds, colors = fleet_selectors.supply_choices(ctx=ctx)
    form = SupplyFilterForm(request.GET, kinds=kinds, colors=colors)
    f = form.supply_filter()
    page = paginate(request, fleet_selectors.supply_list(ctx=ctx, f=f))
    rows = [{"supply": supply, "is_low": _is_low(supply.percent)} for supply in page]
    context = {
        "page": page,
        "rows": rows,
        "form": form,
        "f": f,
        "is_filtered": f != SupplyFilter(sort=f.sort),
        "sorts": _sort_links(f.sort, fleet_selectors.SUPPLY_SORTS),
        "low_percent": fleet_selectors.LOW_SUPPLY_PERCENT,
    }
    template = "devices/_supply_table.html" if _is_partial(request) else "devices/supply_list.html"
    return render(request, template, context)


@tenant_view()
def alert_list(request: Any) -> HttpResponse:
    ctx = request.ctx
    severity = request.GET.get("severity", "")
    if severity not in Alert.Severity.values:
        severity = ""
    is_snoozed = request.GET.get("snoozed") == "1"
    alerts = fleet_selectors.alert_list(ctx=ctx, severity=severity, is_snoozed=is_snoozed)
    is_fleet_staff = ctx.role in FLEET_STAFF_ROLES
    context = {
        "page": paginate(request, alerts),
        "now": now(),
        "severity": severity,
        "severities": Alert.Severity.choices,
        "is_snoozed": is_snoozed,
        "is_fleet_staff": is_fleet_staff,
        "snooze_choices": SNOOZE_CHOICES,
        "silent_collectors": selectors.collector_silent_count(ctx=ctx) if is_fleet_staff else 0,
    }
    return render(request, "devices/alert_list.html", context)


def fleet_dashboard_context(ctx: Any) -> dict[str, Any]:
    """The fleet part of the dashboard (accounts.views.dashboard renders it)."""
    summary = fleet_selectors.fleet_summary(ctx=ctx, days=HISTORY_DAYS)
    return {
        "fleet": summary,
        "fleet_pages_chart": charts.bar_chart(
            [
                charts.Bar(dateformat.format(day, "d M"), n, "bar-pages")
                for day, n in summary.pages_per_day.items()
            ],
            title=_("Pages per day, last %(days)s days") % {"days": HISTORY_DAYS},
            label_every=7,
            empty=_("No pages counted in the last 30 days"),
        ),
        "fleet_supply_chart": charts.bar_chart(
            [
                charts.Bar(label, n, "bar-low" if i < 2 else "bar-supply")
                for i, (label, n) in enumerate(summary.supply_levels)
            ],
            title=_("Supplies by level"),
            empty=_("No supply levels reported yet"),
        ),
    }


# Printers on a customer's dashboard: the ones that need attention first.
CUSTOMER_DASHBOARD_DEVICES = 8


def customer_dashboard_context(ctx: Any) -> dict[str, Any]:
    """A customer's dashboard: their printers, lowest supply first, and their open orders."""
    from orders import selectors as order_selectors

    devices = fleet_selectors.device_list(ctx=ctx, f=DeviceFilter(sort="supply"))
    every = order_selectors.order_list(ctx=ctx)
    orders = Listing(every.rows.filter(status__in=order_selectors.OPEN_STATUSES), every.load)
    return {
        "customer_devices": devices[:CUSTOMER_DASHBOARD_DEVICES],
        "open_orders": orders[:5],
        "low_percent": fleet_selectors.LOW_SUPPLY_PERCENT,
    }
