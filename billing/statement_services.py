"""Statements: compute drafts (set-based, in batches), finalise with gapless numbers, adjust.

Computing a batch of contract periods is one transaction: claim the statements (insert or find
by the unique key), lock them in pk order, read the usage of every membership with one query,
price it in Python with Decimal, replace the draft lines. Two workers on the same period meet
at the claim and the lock: the second waits, recomputes from the same data and writes the same
statement again, so there is only ever one.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils.timezone import now
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from billing.email_services import statement_email_enqueue
from billing.models import (
    Contract,
    ContractDevice,
    CounterCorrection,
    PlanVersion,
    Statement,
    StatementCounter,
    StatementFinalError,
    StatementLine,
)
from billing.pricing import (
    ZERO,
    Growth,
    Rate,
    Tier,
    UsageItem,
    billed_usage,
    midnight,
    overlap,
    period_before,
    period_containing,
    period_day_problem,
    price_usage,
    prorated,
    tax_of,
)
from billing.usage_selectors import Member, usage_growth
from devices.models import Snapshot
from devices.writer import copy_str
from integrations.models import Event
from integrations.services import webhook_emit
from portal import rls
from portal.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from portal.tenancy import ADMIN_ROLES, Role, TenantContext

FINANCE_ROLES = ADMIN_ROLES | {Role.RESELLER_FINANCE, Role.SYSTEM}
# Contract periods computed per transaction by the period close, and how many such
# transactions run at once (one per core of the 2-core reference machine).
BATCH_SIZE = 500
CLOSE_WORKERS = 2

# A statement line's identity across an original and its adjustments: a device has one fee
# line and one line per counter in each of its membership windows.
LineKey = tuple[str, int | None, str, str, str, date | None]
# What an adjustment line carries as the difference to what was billed.
DIFFERENCE = ("usage", "allowance", "billable", "amount")


def _require_finance(ctx: TenantContext) -> None:
    if ctx.role not in FINANCE_ROLES:
        raise PermissionDeniedError(_("Only a reseller admin or finance user may do this."))


@dataclass(frozen=True)
class PeriodJob:
    contract: Contract
    period_start: date
    period_end: date


def version_for(versions: Sequence[PlanVersion], day: date) -> PlanVersion | None:
    """The version in force on `day`: the latest effective_from at or before it."""
    candidates = [v for v in versions if v.effective_from <= day]
    return max(candidates, key=lambda v: v.effective_from) if candidates else None


def _rates_of(version: PlanVersion) -> list[Rate]:
    cached: list[Rate] | None = getattr(version, "_pricing_rates", None)
    if cached is not None:
        return cached
    rates = [
        Rate(
            key=rate.pk,
            counter=rate.counter,
            media_type=rate.media_type,
            color=rate.color,
            mode=rate.mode,
            scope=rate.scope,
            included_units=rate.included_units,
            tiers=tuple(Tier(t.from_units, t.to_units, t.unit_price) for t in rate.tiers.all()),
        )
        for rate in version.rates.all()
    ]
    version._pricing_rates = rates  # type: ignore[attr-defined]
    return rates


@dataclass
class LineRow:
    """A statement line before it is written: plain data, so that a period close of 100,000
    devices builds no model instances and is written with COPY on PostgreSQL."""

    kind: str
    device_id: int | None = None
    counter: str = ""
    media_type: str = ""
    color: str = ""
    window_start: date | None = None
    window_end: date | None = None
    start_at: datetime | None = None
    start_value: Decimal | None = None
    end_at: datetime | None = None
    end_value: Decimal | None = None
    measured: Decimal = ZERO
    usage: Decimal = ZERO
    allowance: Decimal = ZERO
    billable: Decimal = ZERO
    estimate_outstanding: Decimal = ZERO
    unit_price: Decimal | None = None
    rate_label: str = ""
    amount: Decimal = ZERO
    flags: list[str] = field(default_factory=list)
    position: int = 0


LINE_COLUMNS = tuple(f.name for f in fields(LineRow))


def _write_lines(rows: Sequence[tuple[Statement, LineRow]]) -> None:
    """Insert the lines of drafts: COPY on PostgreSQL, bulk_create elsewhere."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        StatementLine.unscoped.bulk_create(
            (
                StatementLine(
                    statement_id=statement.pk,
                    reseller_id=statement.reseller_id,
                    customer_id=statement.customer_id,
                    **{name: getattr(line, name) for name in LINE_COLUMNS},
                )
                for statement, line in rows
            ),
            batch_size=2000,
        )
        return
    names = ", ".join(
        connection.ops.quote_name(c)
        for c in ("statement_id", "reseller_id", "customer_id", *LINE_COLUMNS)
    )
    data = _lines_copy_text(rows).encode()
    with connection.cursor() as cursor:
        if not rls.enabled():
            with cursor.cursor.copy(f"COPY billing_statementline ({names}) FROM STDIN") as copy:
                copy.write(data)
            return
        # COPY FROM refuses a table under row-level security: into a temporary twin (emptied at
        # commit, and here in case this transaction filled it before), then one INSERT ... SELECT
        # that the policy checks, as devices.writer does for readings.
        create = "CREATE TEMP TABLE IF NOT EXISTS billing_statementline_stage ON COMMIT DELETE ROWS"
        like = f" AS SELECT {names} FROM billing_statementline WITH NO DATA;"  # noqa: S608
        cursor.execute(create + like + " DELETE FROM billing_statementline_stage")  # noqa: S608
        with cursor.cursor.copy(f"COPY billing_statementline_stage ({names}) FROM STDIN") as copy:
            copy.write(data)
        cursor.execute(
            f"INSERT INTO billing_statementline ({names})"  # noqa: S608 - our names
            f" SELECT {names} FROM billing_statementline_stage"
        )


_NULL = "\\N"


def _text(value: str) -> str:
    return copy_str(value) if value else ""


def _optional(value: Any) -> str:
    """A date, datetime or Decimal as COPY text (ISO dates; Decimal's own str, which the
    numeric column reads back exactly)."""
    if value is None:
        return _NULL
    return value.isoformat() if isinstance(value, date) else str(value)


def _lines_copy_text(rows: Sequence[tuple[Statement, LineRow]]) -> str:
    """The COPY text of statement lines, in the column order of `_write_lines`.

    Formatted field by field for the one shape of a line: the generic COPY formatter looks up
    every value's type, 27 calls per line, and that was a third of a 100,000-device close."""
    heads: dict[int, str] = {}
    flag_texts: dict[tuple[str, ...], str] = {}
    out: list[str] = []
    for statement, line in rows:
        head = heads.get(statement.pk)
        if head is None:
            head = heads[statement.pk] = (
                f"{statement.pk}\t{statement.reseller_id}\t{statement.customer_id}\t"
            )
        flags = tuple(line.flags)
        flag_text = flag_texts.get(flags)
        if flag_text is None:
            flag_text = flag_texts[flags] = copy_str(json.dumps(list(flags)))
        out.append(
            f"{head}{line.kind.value if isinstance(line.kind, StatementLine.Kind) else line.kind}"
            f"\t{_NULL if line.device_id is None else line.device_id}"
            f"\t{_text(line.counter)}\t{_text(line.media_type)}\t{_text(line.color)}"
            f"\t{_optional(line.window_start)}\t{_optional(line.window_end)}"
            f"\t{_optional(line.start_at)}\t{_optional(line.start_value)}"
            f"\t{_optional(line.end_at)}\t{_optional(line.end_value)}"
            f"\t{line.measured}\t{line.usage}\t{line.allowance}\t{line.billable}"
            f"\t{line.estimate_outstanding}\t{_optional(line.unit_price)}"
            f"\t{_text(line.rate_label)}\t{line.amount}\t{flag_text}\t{line.position}\n"
        )
    return "".join(out)


@dataclass
class Computed:
    version: PlanVersion
    lines: list[LineRow]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    flag_count: int


@dataclass(frozen=True, slots=True)
class Membership:
    """A contract membership as the computation reads it: a plain row, since a close of 100,000
    devices would otherwise build a model instance and its device's for every one."""

    pk: int
    contract_id: int
    device_id: int
    joined_on: date
    left_on: date | None
    serial: str


def _build(
    job: PeriodJob,
    version: PlanVersion,
    memberships: list[Membership],
    growth: dict[int, dict[tuple[str, str, str], Growth]],
    prior: dict[tuple[int, str, str, str], Decimal],
) -> Computed:
    """The lines of one contract period, priced and rounded."""
    contract, ps, pe = job.contract, job.period_start, job.period_end
    currency = contract.plan.currency
    period_days = (pe - ps).days
    estimate = contract.missing_data == Contract.MissingData.ESTIMATE
    lines: list[LineRow] = []
    usage_lines: list[LineRow] = []
    items: list[UsageItem] = []
    memberships = sorted(memberships, key=lambda m: (m.serial, m.joined_on, m.pk))
    rates = _rates_of(version)
    member_days: dict[int, int] = defaultdict(int)
    # Estimated units not yet backed by readings, per device counter, and the end of the window
    # that left them (None: the previous period). A later window of the device pays them off
    # only if its growth is measured from a reading at or before that end, so that it covers
    # the estimated days; a reading in between settles them (docs/billing.md).
    outstanding: dict[tuple[int, str, str, str], tuple[Decimal, datetime | None]] = {
        key: (units, None) for key, units in prior.items()
    }
    for order, membership in enumerate(memberships):
        window = overlap(membership.joined_on, membership.left_on, ps, pe)
        term = overlap(contract.starts_on, contract.ends_on, ps, pe)
        if window is None or term is None:
            continue
        window = overlap(window[0], window[1], term[0], term[1])
        if window is None:
            continue
        days = (window[1] - window[0]).days
        member_days[membership.device_id] += days
        series = growth.get(membership.pk, {})
        keys = sorted(series)
        fee_flags = [] if keys else ["no_readings"]
        if days < period_days:
            fee_flags.append("prorated")
        lines.append(
            LineRow(
                kind=StatementLine.Kind.FEE,
                device_id=membership.device_id,
                window_start=window[0],
                window_end=window[1],
                rate_label=f"{days}/{period_days} days",
                unit_price=version.monthly_fee_per_device,
                amount=prorated(version.monthly_fee_per_device, days, period_days, currency),
                flags=fee_flags,
            )
        )
        for key in keys:
            g = series[key]
            counter_key = (membership.device_id, *key)
            owed, left_by = outstanding.get(counter_key, (ZERO, None))
            if left_by is not None and g.start_at > left_by:
                owed = ZERO
            billed = billed_usage(
                growth=g, estimate_missing=estimate, window_days=days, prior_outstanding=owed
            )
            outstanding[counter_key] = (billed.outstanding, midnight(window[1]))
            line = LineRow(
                kind=StatementLine.Kind.USAGE,
                device_id=membership.device_id,
                counter=key[0],
                media_type=key[1],
                color=key[2],
                window_start=window[0],
                window_end=window[1],
                start_at=g.start_at,
                start_value=g.start_value,
                end_at=g.end_at,
                end_value=g.end_value,
                measured=g.measured,
                usage=billed.usage,
                estimate_outstanding=billed.outstanding,
                amount=ZERO,
                flags=list(billed.flags),
            )
            lines.append(line)
            usage_lines.append(line)
            items.append(
                UsageItem(
                    sort_key=(order, *key),
                    device_key=membership.device_id,
                    counter=key[0],
                    media_type=key[1],
                    color=key[2],
                    usage=billed.usage,
                )
            )
    priced = price_usage(
        items, rates, member_days=member_days, period_days=period_days, currency=currency
    )
    unpriced: set[int] = set()
    for line, price in zip(usage_lines, priced, strict=True):
        if price.rate is None:
            unpriced.add(id(line))  # counters the plan does not price are not billed
            continue
        line.allowance = price.allowance
        line.billable = price.billable
        line.amount = price.amount
        line.unit_price = price.unit_price
        line.rate_label = price.rate_label
    lines = [line for line in lines if id(line) not in unpriced]
    subtotal = sum((line.amount for line in lines), ZERO)
    term = overlap(contract.starts_on, contract.ends_on, ps, pe)
    term_days = (term[1] - term[0]).days if term else 0
    minimum = prorated(version.minimum_monthly, term_days, period_days, currency)
    if minimum > subtotal:
        lines.append(
            LineRow(
                kind=StatementLine.Kind.MINIMUM,
                rate_label=f"minimum {minimum} {currency}",
                unit_price=None,
                amount=minimum - subtotal,
                flags=[],
            )
        )
        subtotal = minimum
    tax = tax_of(subtotal, version.tax_rate, currency)
    for position, line in enumerate(lines, start=1):
        line.position = position
    return Computed(
        version=version,
        lines=lines,
        subtotal=subtotal,
        tax=tax,
        total=subtotal + tax,
        flag_count=sum(1 for line in lines if line.flags and line.flags != ["prorated"]),
    )


def _versions(jobs: Sequence[PeriodJob]) -> dict[int, list[PlanVersion]]:
    # Versions of plans of contracts that the caller took from a tenant scope.
    versions: dict[int, list[PlanVersion]] = defaultdict(list)
    plan_ids = {job.contract.plan_id for job in jobs}
    for version in PlanVersion.unscoped.filter(plan_id__in=plan_ids).prefetch_related(
        "rates__tiers"
    ):
        versions[version.plan_id].append(version)
    return versions


def _compute(
    jobs: Sequence[PeriodJob], versions: dict[int, list[PlanVersion]]
) -> dict[tuple[int, date], Computed]:
    """Lines of many contract periods from one usage query. Jobs without terms are left out."""
    if not jobs:
        return {}
    contract_ids = {job.contract.pk for job in jobs}
    by_contract: dict[int, list[Membership]] = defaultdict(list)
    lo = min(job.period_start for job in jobs)
    hi = max(job.period_end for job in jobs)
    memberships = (
        ContractDevice.unscoped.filter(contract_id__in=contract_ids, joined_on__lt=hi)
        .filter(Q(left_on__isnull=True) | Q(left_on__gt=lo))
        .values_list("id", "contract_id", "device_id", "joined_on", "left_on", "device__serial")
    )
    for row in memberships:
        membership = Membership(*row)
        by_contract[membership.contract_id].append(membership)
    members: list[Member] = []
    job_memberships: dict[tuple[int, date], list[Membership]] = {}
    for job in jobs:
        chosen = []
        for membership in by_contract[job.contract.pk]:
            window = overlap(
                membership.joined_on, membership.left_on, job.period_start, job.period_end
            )
            term = overlap(
                job.contract.starts_on, job.contract.ends_on, job.period_start, job.period_end
            )
            if window is None or term is None:
                continue
            window = overlap(window[0], window[1], term[0], term[1])
            if window is None:
                continue
            chosen.append(membership)
            members.append(
                Member(
                    membership.pk, membership.device_id, midnight(window[0]), midnight(window[1])
                )
            )
        job_memberships[(job.contract.pk, job.period_start)] = chosen
    growth_all = usage_growth(members)
    growth_by_member: dict[int, dict[tuple[str, str, str], Growth]] = defaultdict(dict)
    for (mid, key), g in growth_all.items():
        growth_by_member[mid][key] = g
    prior = _prior_outstanding(jobs)
    result: dict[tuple[int, date], Computed] = {}
    for job in jobs:
        version = version_for(versions[job.contract.plan_id], job.period_start)
        if version is None:
            continue
        chosen = job_memberships[(job.contract.pk, job.period_start)]
        growth = {m.pk: growth_by_member[m.pk] for m in chosen}
        result[(job.contract.pk, job.period_start)] = _build(
            job, version, chosen, growth, prior.get((job.contract.pk, job.period_start), {})
        )
    return result


def _prior_outstanding(
    jobs: Sequence[PeriodJob],
) -> dict[tuple[int, date], dict[tuple[int, str, str, str], Decimal]]:
    """Estimated units not yet backed by readings, from each contract's previous period."""
    wanted = {(job.contract.pk, job.period_start) for job in jobs}
    usage = StatementLine.unscoped.filter(
        statement__kind=Statement.Kind.REGULAR,
        statement__contract_id__in={c for c, _ in wanted},
        statement__period_end__in={p for _, p in wanted},
        kind=StatementLine.Kind.USAGE,
    )
    # Rare (silent counters of estimating contracts), so found first by the positive value; a
    # device's later window may have paid off what an earlier one left, so the last window's
    # line of each counter is what carries over.
    owing = set(usage.filter(estimate_outstanding__gt=0).values_list("statement_id", "device_id"))
    if not owing:
        return {}
    rows = (
        usage.filter(statement_id__in={s for s, _ in owing}, device_id__in={d for _, d in owing})
        .order_by("window_start", "position")
        .values_list(
            "statement_id",
            "statement__contract_id",
            "statement__period_end",
            "device_id",
            "counter",
            "media_type",
            "color",
            "estimate_outstanding",
        )
    )
    result: dict[tuple[int, date], dict[tuple[int, str, str, str], Decimal]] = defaultdict(dict)
    for statement_id, contract_id, period_end, device_id, *key, outstanding in rows:
        if (contract_id, period_end) in wanted and (statement_id, device_id) in owing:
            counter, media_type, color = key
            result[(contract_id, period_end)][(device_id, counter, media_type, color)] = outstanding
    for carried in result.values():
        for key in [k for k, v in carried.items() if not v]:
            del carried[key]
    return result


def _claim(jobs: Sequence[PeriodJob], versions: dict[int, list[PlanVersion]]) -> list[Statement]:
    """Insert the drafts that do not exist yet, then lock every one in pk order."""
    Statement.unscoped.bulk_create(
        [
            Statement(
                reseller_id=job.contract.reseller_id,
                customer_id=job.contract.customer_id,
                contract=job.contract,
                plan_version=version_for(versions[job.contract.plan_id], job.period_start),
                period_start=job.period_start,
                period_end=job.period_end,
                currency=job.contract.plan.currency,
            )
            for job in jobs
        ],
        ignore_conflicts=True,
    )
    keys = Q()
    for job in jobs:
        keys |= Q(contract_id=job.contract.pk, period_start=job.period_start)
    return list(
        Statement.unscoped.select_for_update()
        .filter(keys, kind=Statement.Kind.REGULAR)
        .order_by("pk")
    )


def statements_compute(*, jobs: Sequence[PeriodJob]) -> list[Statement]:
    """Compute (or recompute) the drafts of `jobs` in one transaction; finals are left alone.

    System code: the contracts come from the caller's tenant scope or from a beat sweep."""
    versions = _versions(jobs)
    # A period before the plan's first terms has nothing to bill.
    jobs = [j for j in jobs if version_for(versions[j.contract.plan_id], j.period_start)]
    if not jobs:
        return []
    with transaction.atomic():
        statements = _claim(jobs, versions)
        drafts = [s for s in statements if s.status == Statement.Status.DRAFT]
        by_key = {(s.contract_id, s.period_start): s for s in drafts}
        wanted = [j for j in jobs if (j.contract.pk, j.period_start) in by_key]
        computed = _compute(wanted, versions)
        StatementLine.unscoped.filter(statement__in=[s.pk for s in drafts]).delete()
        new_lines: list[tuple[Statement, LineRow]] = []
        stamp = now()
        for key, statement in by_key.items():
            result = computed.get(key)
            if result is None:
                continue
            new_lines.extend((statement, line) for line in result.lines)
            statement.plan_version = result.version
            statement.subtotal = result.subtotal
            statement.tax_rate = result.version.tax_rate
            statement.tax = result.tax
            statement.total = result.total
            statement.flag_count = result.flag_count
            statement.computed_at = stamp
        _write_lines(new_lines)
        _write_totals([s for k, s in by_key.items() if k in computed])
    return statements


TOTALS = ("plan_version", "subtotal", "tax_rate", "tax", "total", "flag_count", "computed_at")


def _write_totals(statements: Sequence[Statement]) -> None:
    """The drafts' totals in one UPDATE from arrays on PostgreSQL: `bulk_update` builds a CASE of
    one branch per statement for each column, which PostgreSQL evaluates for every row."""
    if not statements:
        return
    if connection.vendor != "postgresql":
        Statement.unscoped.bulk_update(statements, list(TOTALS), batch_size=500)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_statement s SET plan_version_id = v.plan_version_id,"
            " subtotal = v.subtotal, tax_rate = v.tax_rate, tax = v.tax, total = v.total,"
            " flag_count = v.flag_count, computed_at = v.computed_at"
            " FROM unnest(%s::bigint[], %s::bigint[], %s::numeric[], %s::numeric[],"
            " %s::numeric[], %s::numeric[], %s::integer[], %s::timestamptz[])"
            " AS v(id, plan_version_id, subtotal, tax_rate, tax, total, flag_count, computed_at)"
            " WHERE s.id = v.id",
            [
                [s.pk for s in statements],
                [s.plan_version_id for s in statements],
                [s.subtotal for s in statements],
                [s.tax_rate for s in statements],
                [s.tax for s in statements],
                [s.total for s in statements],
                [s.flag_count for s in statements],
                [s.computed_at for s in statements],
            ],
        )


def statement_compute(*, ctx: TenantContext, contract_id: int, period_start: date) -> Statement:
    """On demand: the draft of one contract period (the period containing `period_start`)."""
    _require_finance(ctx)
    if problem := period_day_problem(period_start):
        raise DomainError(problem, code="invalid_period", fields={"period_start": [problem]})
    contract = (
        Contract.objects.for_tenant(ctx).select_related("plan").filter(pk=contract_id).first()
    )
    if contract is None:
        raise NotFoundError(_("No such contract."))
    ps, pe = period_containing(period_start, contract.anchor_day)
    if overlap(contract.starts_on, contract.ends_on, ps, pe) is None:
        raise DomainError(_("The contract does not run in this period."), code="outside_term")
    if (
        not PlanVersion.objects.for_tenant(ctx)
        .filter(plan_id=contract.plan_id, effective_from__lte=ps)
        .exists()
    ):
        raise DomainError(
            _("The plan has no terms for this period yet."), code="plan_without_terms"
        )
    statements = statements_compute(jobs=[PeriodJob(contract, ps, pe)])
    statement = statements[0]
    if statement.status == Statement.Status.FINAL:
        raise StatementFinalError(_("This period is finalised; record an adjustment instead."))
    return statement


def statements_close(*, as_of: date, batch_size: int = BATCH_SIZE) -> int:
    """Beat: the drafts of every contract's last period that ended by `as_of`, and every other
    draft again (late readings, corrections). Returns how many statements were computed.

    Across tenants on purpose: the nightly close runs for every reseller. It sets its own
    scopes, so that its batches can run side by side in transactions of their own."""
    jobs: list[PeriodJob] = []
    with rls.system("the nightly close finds the periods of every reseller"):
        for contract in Contract.unscoped.select_related("plan").filter(starts_on__lt=as_of):
            current_start = period_containing(as_of, contract.anchor_day)[0]
            ps, pe = period_before(current_start, contract.anchor_day)
            if overlap(contract.starts_on, contract.ends_on, ps, pe) is not None:
                jobs.append(PeriodJob(contract, ps, pe))
        seen = {(j.contract.pk, j.period_start) for j in jobs}
        drafts = Statement.unscoped.filter(
            kind=Statement.Kind.REGULAR, status=Statement.Status.DRAFT, period_end__lte=as_of
        ).select_related("contract__plan")
        for draft in drafts:
            if (draft.contract_id, draft.period_start) not in seen:
                jobs.append(PeriodJob(draft.contract, draft.period_start, draft.period_end))
    return _compute_in_batches(jobs, batch_size)


def _compute_in_batches(jobs: list[PeriodJob], batch_size: int) -> int:
    """Oldest periods first, one period start per batch: a period's estimates feed the next
    period's offsets, so a batch never holds two periods of one contract."""
    by_start: dict[date, list[PeriodJob]] = defaultdict(list)
    for job in jobs:
        by_start[job.period_start].append(job)
    done = 0
    for start in sorted(by_start):
        same = sorted(by_start[start], key=lambda j: j.contract.pk)
        batches = [same[i : i + batch_size] for i in range(0, len(same), batch_size)]
        done += sum(_run_batches(batches))
    return done


def _compute_batch(batch: list[PeriodJob]) -> int:
    with rls.system("one batch prices contracts of several resellers"):
        return len(statements_compute(jobs=batch))


def _run_batches(batches: list[list[PeriodJob]]) -> list[int]:
    """Batches of one period touch disjoint contracts, so they may run side by side, each in
    its own transaction on its own connection: the database sorts one batch while Python
    prices another. Inside an outer transaction (tests) they run one after the other."""
    workers = min(CLOSE_WORKERS, len(batches))
    if workers < 2 or connection.vendor != "postgresql" or connection.in_atomic_block:
        return [_compute_batch(batch) for batch in batches]

    def run(batch: list[PeriodJob]) -> int:
        try:
            return _compute_batch(batch)  # a new connection: the caller's scope is not here
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, batches))


def statements_stale_sweep() -> int:
    """Recompute the drafts that late data arrived for: a snapshot of one of the contract's
    devices, collected up to the end of the period but received after the draft was
    computed, or a counter correction entered since. Returns how many were recomputed.

    Across tenants on purpose: a beat sweep that re-derives its work from the database."""
    with rls.system("late data may reach any reseller's drafts"):
        stale = _stale_jobs()
    return _compute_in_batches(stale, BATCH_SIZE)


def _stale_jobs() -> list[PeriodJob]:
    devices = ContractDevice.unscoped.filter(contract_id=OuterRef(OuterRef("contract_id")))
    late_reading = Snapshot.unscoped.filter(
        device_id__in=devices.values("device_id"),
        collected_at__date__lte=OuterRef("period_end"),
        batch__received_at__gt=OuterRef("computed_at"),
    )
    late_correction = CounterCorrection.unscoped.filter(
        device_id__in=devices.values("device_id"), created_at__gt=OuterRef("computed_at")
    )
    drafts = (
        Statement.unscoped.filter(kind=Statement.Kind.REGULAR, status=Statement.Status.DRAFT)
        .filter(Exists(late_reading) | Exists(late_correction))
        .select_related("contract__plan")
    )
    return [PeriodJob(d.contract, d.period_start, d.period_end) for d in drafts]


# --- Finalise and adjust ------------------------------------------------------------------------


def statement_finalise(*, ctx: TenantContext, statement_id: int, by: User | None) -> Statement:
    """Give the draft the reseller's next number and freeze it. The counter row is locked in
    the same transaction, so a number is used exactly once and none is skipped."""
    _require_finance(ctx)
    with transaction.atomic():
        statement = (
            Statement.objects.for_tenant(ctx).select_for_update().filter(pk=statement_id).first()
        )
        if statement is None:
            raise NotFoundError(_("No such statement."))
        if statement.status == Statement.Status.FINAL:
            raise StatementFinalError(_("This statement is final already."))
        if statement.kind == Statement.Kind.REGULAR and statement.period_end > now().date():
            raise ConflictError(_("The period is not over yet."), code="period_open")
        counter, _created = StatementCounter.objects.for_tenant(ctx).get_or_create(
            reseller_id=ctx.reseller_id
        )
        counter = StatementCounter.objects.for_tenant(ctx).select_for_update().get(pk=counter.pk)
        number = counter.last_number + 1
        StatementCounter.objects.for_tenant(ctx).filter(pk=counter.pk).update(
            last_number=F("last_number") + 1
        )
        changed = (
            Statement.objects.for_tenant(ctx)
            .filter(pk=statement.pk, status=Statement.Status.DRAFT)
            .update(
                status=Statement.Status.FINAL,
                number=number,
                finalised_at=now(),
                finalised_by=by if by is not None and by.pk else None,
            )
        )
        if changed != 1:
            raise StatementFinalError(_("This statement is final already."))
        audit_record(ctx=ctx, action="statement.finalise", obj=statement, detail={"number": number})
        final = Statement.objects.for_tenant(ctx).get(pk=statement.pk)
        webhook_emit(
            reseller_id=ctx.reseller_id,
            event=Event.STATEMENT_FINALISED,
            data=lambda: {"statement": statement_webhook_data(final)},
        )
        statement_email_enqueue(statement_id=final.pk)
    return final


def statement_webhook_data(statement: Statement) -> dict[str, Any]:
    customer = statement.customer
    return {
        "id": statement.pk,
        "number": statement.number,
        "kind": statement.kind,
        "adjusts": statement.adjusts_id,
        "customer": {
            "id": customer.pk,
            "name": customer.name,
            "account_number": customer.account_number,
        },
        "contract": statement.contract_id,
        "period_start": statement.period_start,
        "period_end": statement.period_end,
        "currency": statement.currency,
        "subtotal": statement.subtotal,
        "tax": statement.tax,
        "total": statement.total,
        "finalised_at": statement.finalised_at,
    }


def _line_key(line: StatementLine | LineRow) -> LineKey:
    return (
        line.kind,
        line.device_id,
        line.counter,
        line.media_type,
        line.color,
        line.window_start,
    )


def statement_adjust(*, ctx: TenantContext, statement_id: int) -> Statement:
    """A draft adjustment of a final statement: today's computation of its period minus what
    the statement and its final adjustments billed, line by line."""
    _require_finance(ctx)
    with transaction.atomic():
        original = (
            Statement.objects.for_tenant(ctx)
            .select_related("contract__plan")
            .select_for_update(of=("self",))
            .filter(pk=statement_id, kind=Statement.Kind.REGULAR)
            .first()
        )
        if original is None:
            raise NotFoundError(_("No such statement."))
        if original.status != Statement.Status.FINAL:
            raise ConflictError(_("Recompute the draft instead."), code="statement_draft")
        job = PeriodJob(original.contract, original.period_start, original.period_end)
        fresh = _compute([job], _versions([job])).get((original.contract_id, original.period_start))
        if fresh is None:
            raise DomainError(
                _("The plan has no terms for this period."), code="plan_without_terms"
            )
        billed: dict[LineKey, dict[str, Decimal]] = defaultdict(
            lambda: dict.fromkeys(DIFFERENCE, ZERO)
        )
        billed_windows: dict[LineKey, date | None] = {}
        finals = Statement.objects.for_tenant(ctx).filter(
            Q(pk=original.pk) | Q(adjusts=original, status=Statement.Status.FINAL)
        )
        billed_tax = sum((s.tax for s in finals), ZERO)
        for line in StatementLine.objects.for_tenant(ctx).filter(statement__in=finals):
            key = _line_key(line)
            totals = billed[key]
            for name in DIFFERENCE:
                totals[name] += getattr(line, name)
            billed_windows[key] = line.window_end or billed_windows.get(key)
        lines: list[LineRow] = []
        fresh_keys = set()
        for line in fresh.lines:
            key = _line_key(line)
            fresh_keys.add(key)
            before = billed.get(key, dict.fromkeys(DIFFERENCE, ZERO))
            if all(getattr(line, name) == before[name] for name in DIFFERENCE):
                continue
            for name in DIFFERENCE:
                setattr(line, name, getattr(line, name) - before[name])
            line.flags = [*line.flags, "adjustment"]
            lines.append(line)
        for key, before in billed.items():
            if key not in fresh_keys and any(before.values()):
                kind, device_id, counter, media_type, color, window_start = key
                lines.append(
                    LineRow(
                        kind=kind,
                        device_id=device_id,
                        counter=counter,
                        media_type=media_type,
                        color=color,
                        window_start=window_start,
                        window_end=billed_windows.get(key),
                        usage=-before["usage"],
                        allowance=-before["allowance"],
                        billable=-before["billable"],
                        amount=-before["amount"],
                        rate_label="reversed",
                        flags=["adjustment", "reversed"],
                    )
                )
        subtotal = sum((line.amount for line in lines), ZERO)
        tax = fresh.tax - billed_tax
        Statement.objects.for_tenant(ctx).filter(
            adjusts=original, status=Statement.Status.DRAFT
        ).delete()
        adjustment = Statement.objects.for_tenant(ctx).create(
            reseller_id=ctx.reseller_id,
            customer_id=original.customer_id,
            contract=original.contract,
            plan_version=fresh.version,
            kind=Statement.Kind.ADJUSTMENT,
            adjusts=original,
            period_start=original.period_start,
            period_end=original.period_end,
            currency=original.currency,
            subtotal=subtotal,
            tax_rate=fresh.version.tax_rate,
            tax=tax,
            total=subtotal + tax,
            flag_count=len(lines),
        )
        for position, line in enumerate(lines, start=1):
            line.position = position
        _write_lines([(adjustment, line) for line in lines])
        audit_record(
            ctx=ctx,
            action="statement.adjust",
            obj=adjustment,
            detail={"adjusts": original.number, "amount": str(subtotal)},
        )
    return adjustment
