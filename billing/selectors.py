"""Reads of plans, contracts, statements and their exports; each takes the tenant context first.

Customers see their own final statements and nothing else of billing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from billing.models import (
    Contract,
    ContractDevice,
    CounterCorrection,
    PlanRate,
    PlanVersion,
    PricePlan,
    Statement,
    StatementLine,
)
from billing.pricing import midnight
from devices.models import CounterReading, Device
from portal.csv_export import copy_csv_line, sql_text_cell
from portal.errors import NotFoundError
from portal.money import round_money
from portal.tenancy import TenantContext


def plan_list(*, ctx: TenantContext) -> QuerySet[Any]:
    return (
        PricePlan.objects.for_tenant(ctx)
        .annotate(
            version_count=Count("versions", distinct=True),
            contract_count=Count("contracts", distinct=True),
        )
        .order_by("name", "pk")
    )


def plan_get(*, ctx: TenantContext, plan_id: int) -> PricePlan:
    plan = (
        PricePlan.objects.for_tenant(ctx)
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=PlanVersion.unscoped.order_by("-effective_from").prefetch_related(
                    Prefetch("rates", queryset=PlanRate.objects.prefetch_related("tiers"))
                ),
            )
        )
        .filter(pk=plan_id)
        .first()
    )
    if plan is None:
        raise NotFoundError("No such plan.")
    return plan


def contract_list(*, ctx: TenantContext, customer_id: int | None = None) -> QuerySet[Any]:
    qs = (
        Contract.objects.for_tenant(ctx)
        .select_related("customer", "plan")
        .annotate(device_count=Count("memberships", filter=Q(memberships__left_on__isnull=True)))
    )
    if customer_id is not None:
        qs = qs.filter(customer_id=customer_id)
    return qs.order_by("customer__name", "reference", "pk")


def contract_get(*, ctx: TenantContext, contract_id: int) -> Contract:
    contract = (
        Contract.objects.for_tenant(ctx)
        .select_related("customer", "plan")
        .filter(pk=contract_id)
        .first()
    )
    if contract is None:
        raise NotFoundError("No such contract.")
    return contract


def contract_device_list(*, ctx: TenantContext, contract_id: int) -> QuerySet[ContractDevice]:
    return (
        ContractDevice.objects.for_tenant(ctx)
        .select_related("device", "device__site")
        .filter(contract_id=contract_id)
        .order_by("device__serial", "joined_on", "pk")
    )


def contract_device_get(*, ctx: TenantContext, contract_device_id: int) -> ContractDevice:
    membership = (
        ContractDevice.objects.for_tenant(ctx)
        .select_related("device", "contract")
        .filter(pk=contract_device_id)
        .first()
    )
    if membership is None:
        raise NotFoundError("No such contract device.")
    return membership


def contract_assignable_devices(*, ctx: TenantContext, contract: Contract) -> QuerySet[Device]:
    """The customer's printers that are in no contract now."""
    busy = ContractDevice.objects.for_tenant(ctx).filter(left_on__isnull=True).values("device_id")
    return (
        Device.objects.for_tenant(ctx)
        .filter(customer_id=contract.customer_id)
        .exclude(pk__in=busy)
        .order_by("serial")
    )


def device_get(*, ctx: TenantContext, device_id: int) -> Device:
    device = Device.objects.for_tenant(ctx).filter(pk=device_id).first()
    if device is None:
        raise NotFoundError("No such device.")
    return device


def correction_list(*, ctx: TenantContext, contract_id: int) -> QuerySet[CounterCorrection]:
    devices = ContractDevice.objects.for_tenant(ctx).filter(contract_id=contract_id)
    return (
        CounterCorrection.objects.for_tenant(ctx)
        .select_related("device")
        .filter(device_id__in=devices.values("device_id"))
        .order_by("-effective_at", "-pk")
    )


@dataclass(frozen=True)
class StatementFilter:
    month: date | None = None  # statements whose period starts in this month
    status: str = ""
    customer_id: int | None = None
    contract_id: int | None = None


def statement_list(*, ctx: TenantContext, f: StatementFilter) -> QuerySet[Statement]:
    qs = Statement.objects.for_tenant(ctx).select_related("customer", "contract", "adjusts")
    if ctx.is_customer:
        qs = qs.filter(status=Statement.Status.FINAL)
    if f.month is not None:
        qs = qs.filter(period_start__year=f.month.year, period_start__month=f.month.month)
    if f.status:
        qs = qs.filter(status=f.status)
    if f.customer_id is not None:
        qs = qs.filter(customer_id=f.customer_id)
    if f.contract_id is not None:
        qs = qs.filter(contract_id=f.contract_id)
    return qs.order_by("-period_start", "customer__name", "contract__reference", "pk")


def statement_totals(*, statements: QuerySet[Statement]) -> list[dict[str, Any]]:
    """Sums per currency of a statement list (plans may bill in different currencies)."""
    rows = (
        statements.order_by()
        .values("currency")
        .annotate(count=Count("pk"), subtotal=Sum("subtotal"), tax=Sum("tax"), total=Sum("total"))
        .order_by("currency")
    )
    # SQLite sums decimals as floats: bring them back to the currency's cents.
    return [
        {
            **row,
            **{
                key: round_money(Decimal(str(row[key] or 0)), row["currency"])
                for key in ("subtotal", "tax", "total")
            },
        }
        for row in rows
    ]


def statement_get(*, ctx: TenantContext, statement_id: int) -> Statement:
    qs = Statement.objects.for_tenant(ctx).select_related(
        "customer", "contract", "contract__plan", "plan_version", "adjusts", "finalised_by"
    )
    if ctx.is_customer:
        qs = qs.filter(status=Statement.Status.FINAL)
    statement = qs.filter(pk=statement_id).first()
    if statement is None:
        raise NotFoundError("No such statement.")
    return statement


def statement_lines(*, ctx: TenantContext, statement: Statement) -> QuerySet[StatementLine]:
    return (
        StatementLine.objects.for_tenant(ctx)
        .select_related("device", "device__site")
        .filter(statement=statement)
        .order_by("position")
    )


def statement_adjustments(*, ctx: TenantContext, statement: Statement) -> QuerySet[Statement]:
    qs = Statement.objects.for_tenant(ctx).filter(adjusts=statement)
    if ctx.is_customer:
        qs = qs.filter(status=Statement.Status.FINAL)
    return qs.order_by("pk")


def statement_sites(*, ctx: TenantContext, statement: Statement) -> list[Any]:
    """The sites whose printers appear on a statement, for its address block."""
    site_ids = (
        StatementLine.objects.for_tenant(ctx)
        .filter(statement=statement, device__isnull=False)
        .values("device__site_id")
    )
    from accounts.models import Site

    return list(Site.objects.for_tenant(ctx).filter(pk__in=site_ids).order_by("name"))


def statement_daily_usage(
    *, ctx: TenantContext, statement: Statement, device_ids: list[int]
) -> dict[tuple[int, str, str, str], list[tuple[date, Decimal]]]:
    """Growth per day of each billed counter of `device_ids` in the statement's period, for the
    usage charts: the last reading of each day against the one before (drops count as 0)."""
    counters = set(
        StatementLine.objects.for_tenant(ctx)
        .filter(statement=statement, kind=StatementLine.Kind.USAGE, device_id__in=device_ids)
        .values_list("device_id", "counter", "media_type", "color")
    )
    if not counters:
        return {}
    start = midnight(statement.period_start) - timedelta(days=1)
    end = midnight(statement.period_end)
    readings = (
        CounterReading.objects.for_tenant(ctx)
        .filter(
            device_id__in={c[0] for c in counters},
            name__in={c[1] for c in counters},
            collected_at__gt=start,
            collected_at__lte=end,
        )
        .order_by("device_id", "name", "media_type", "color", "collected_at")
        .values_list("device_id", "name", "media_type", "color", "collected_at", "value")
    )
    last_of_day: dict[tuple[int, str, str, str], dict[date, Decimal]] = defaultdict(dict)
    for device_id, name, media_type, color, at, value in readings:
        key = (device_id, name, media_type, color)
        if key in counters:
            last_of_day[key][_day_of(at)] = Decimal(value)
    result: dict[tuple[int, str, str, str], list[tuple[date, Decimal]]] = {}
    days = (statement.period_end - statement.period_start).days
    for key, values in last_of_day.items():
        series: list[tuple[date, Decimal]] = []
        previous = values.get(statement.period_start - timedelta(days=1))
        for offset in range(days):
            day = statement.period_start + timedelta(days=offset)
            value = values.get(day)
            growth = Decimal(0)
            if value is not None:
                if previous is not None and value > previous:
                    growth = value - previous
                previous = value
            series.append((day, growth))
        result[key] = series
    return result


def _day_of(at: datetime) -> date:
    return at.date()


@dataclass(frozen=True)
class UsageExportFilter:
    month: date
    status: str = Statement.Status.FINAL


# Machine names, never translated: an ERP maps the columns by them, whatever the language of the
# person who downloads the file (values are codes, ISO dates and plain decimals too).
USAGE_EXPORT_COLUMNS = (
    "statement_number",
    "statement_status",
    "statement_kind",
    "customer",
    "customer_account",
    "contract",
    "purchase_order",
    "period_start",
    "period_end",
    "currency",
    "line",
    "line_kind",
    "device_serial",
    "counter",
    "media_type",
    "color",
    "start_value",
    "end_value",
    "usage",
    "allowance",
    "billable",
    "unit_price",
    "amount",
    "flags",
)


def usage_export_rows(*, ctx: TenantContext, f: UsageExportFilter) -> UsageExport:
    """Every line of a month's statements, for the ERP: streamed from the database, so memory
    stays flat however many lines there are. Nothing runs until it is iterated."""
    return UsageExport(ctx=ctx, f=f)


# Statements per COPY of the usage export: 25 contracts of 100 printers are 7,500 lines.
STATEMENTS_PER_COPY = 25


@dataclass(frozen=True)
class UsageExport:
    """The lines of `usage_export_rows`. Iterated, it gives one tuple per line in the order of
    USAGE_EXPORT_COLUMNS (the ORM, in chunks); on PostgreSQL `csv_lines` has the database
    format them as CSV instead, which the usage export uses (billing.exports.usage_csv)."""

    ctx: TenantContext
    f: UsageExportFilter

    def _statements(self) -> QuerySet[Statement]:
        return statement_list(
            ctx=self.ctx, f=StatementFilter(month=self.f.month, status=self.f.status)
        )

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        lines = (
            StatementLine.objects.for_tenant(self.ctx)
            .filter(statement__in=self._statements().values("pk"))
            # The unique (statement, position) index gives this order without sorting first.
            .order_by("statement_id", "position")
            .values_list(
                "statement__number",
                "statement__status",
                "statement__kind",
                "statement__customer__name",
                "statement__customer__account_number",
                "statement__contract__reference",
                "statement__contract__purchase_order",
                "statement__period_start",
                "statement__period_end",
                "statement__currency",
                "position",
                "kind",
                "device__serial",
                "counter",
                "media_type",
                "color",
                "start_value",
                "end_value",
                "usage",
                "allowance",
                "billable",
                "unit_price",
                "amount",
                "flags",
            )
        )
        yield from lines.iterator(chunk_size=5000)

    @property
    def can_copy(self) -> bool:
        return connection.vendor == "postgresql"

    def csv_lines(self) -> Iterator[str]:
        """The data lines of the CSV (no header), as `portal.csv_export.csv_lines` writes the
        tuples of `__iter__` (exports.usage_csv: the period's last day, flags joined by
        spaces), but formatted by PostgreSQL with COPY: 100,000 lines took 9.7 s through the
        ORM and the csv module, mostly in Python (docs/scale.md, "Month close")."""
        ids, params = self._statements().order_by().values("pk").query.sql_with_params()
        reseller = self.ctx.reseller_id
        text = sql_text_cell
        # A few statements per COPY, in id order: each COPY sorts only their lines, in memory,
        # and the first line goes out at once (one COPY of a month's 300,000 lines sorted them
        # on disk before the first). The statements' cells are formatted once per statement.
        sql = f"""
            COPY (
                SELECT s.number, s.status, s.kind, s.customer, s.account, s.reference,
                    s.purchase_order, s.period_start, s.period_end, s.currency,
                    l.position, {text("l.kind")},
                    {text("d.serial")},
                    {text("l.counter")}, {text("l.media_type")}, {text("l.color")},
                    l.start_value, l.end_value, l.usage, l.allowance, l.billable, l.unit_price,
                    l.amount, {text("f.flags")}
                FROM (
                    SELECT st.id, st.number, {text("st.status")} AS status,
                        {text("st.kind")} AS kind, {text("c.name")} AS customer,
                        {text("c.account_number")} AS account, {text("k.reference")} AS reference,
                        {text("k.purchase_order")} AS purchase_order,
                        to_char(st.period_start, 'YYYY-MM-DD') AS period_start,
                        to_char(st.period_end - 1, 'YYYY-MM-DD') AS period_end,
                        {text("st.currency")} AS currency
                    FROM billing_statement st
                    JOIN accounts_customer c ON c.id = st.customer_id AND c.reseller_id = %s
                    JOIN billing_contract k ON k.id = st.contract_id AND k.reseller_id = %s
                    WHERE st.reseller_id = %s AND st.id = ANY(%s::bigint[])
                    OFFSET 0
                ) s
                JOIN billing_statementline l ON l.statement_id = s.id AND l.reseller_id = %s
                LEFT JOIN devices_device d ON d.id = l.device_id AND d.reseller_id = %s
                CROSS JOIN LATERAL (
                    SELECT CASE WHEN l.flags = '[]'::jsonb THEN NULL ELSE array_to_string(
                        ARRAY(SELECT jsonb_array_elements_text(l.flags)), ' ') END AS flags
                ) f
                ORDER BY l.statement_id, l.position
            ) TO STDOUT WITH (FORMAT csv)
        """  # noqa: S608 - the statements' sub-select is the ORM's, with its parameters
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM ({ids}) AS ids ORDER BY 1", params)  # noqa: S608
            statement_ids = [row[0] for row in cursor.fetchall()]
            for start in range(0, len(statement_ids), STATEMENTS_PER_COPY):
                chunk = statement_ids[start : start + STATEMENTS_PER_COPY]
                with cursor.cursor.copy(
                    sql, [reseller, reseller, reseller, chunk, reseller, reseller]
                ) as copy:
                    for data in copy:
                        yield copy_csv_line(data)
