"""Bulk import of customers, sites and devices from CSV: a preview that writes nothing and says,
row by row, what would be created and what is wrong; then, once confirmed, all of it in one
transaction or nothing.

The confirmation names the preview by the SHA-256 of the file, and the apply step validates the
file again inside its transaction: a file that changed, or rows that another user's change made
invalid in between, are refused whole.

Rows are matched the way the portal's own forms match: a customer by name within the reseller and
a site by name within its customer, both ignoring case; a device by serial within the reseller.
A row naming an existing printer at the same customer and site changes nothing (importing a file
twice is harmless); the same serial anywhere else is an error, since moving printers is a
decision for the device's move page, with its billing consequences.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import Customer, Site
from accounts.services import audit_record, customer_create, site_create
from devices.fleet_services import DEVICE_ADMIN_ROLES
from devices.models import Device
from portal.errors import ConflictError, DomainError, PermissionDeniedError
from portal.tenancy import TenantContext

IMPORT_MAX_BYTES = 512 * 1024
IMPORT_MAX_ROWS = 2000
REQUIRED_COLUMNS = ("customer", "site", "serial")
# Column -> the most characters it may hold (the model's field length).
COLUMN_LIMITS = {
    "customer": 200,
    "site": 200,
    "serial": 128,
    "name": 200,
    "model": 255,
    "manufacturer": 128,
    "address": 255,
    "postal_code": 32,
    "city": 128,
    "country": 2,
}
COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass
class ImportRow:
    line: int  # in the file, the header being line 1
    values: dict[str, str]
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def get(self, column: str) -> str:
        return self.values.get(column, "")


@dataclass
class ImportPlan:
    digest: str
    rows: list[ImportRow] = field(default_factory=list)
    # Problems of the file as a whole (encoding, header, size).
    errors: list[str] = field(default_factory=list)
    new_customers: list[str] = field(default_factory=list)
    new_sites: list[tuple[str, str]] = field(default_factory=list)
    new_devices: list[str] = field(default_factory=list)
    unchanged_devices: int = 0

    @property
    def error_rows(self) -> list[ImportRow]:
        return [row for row in self.rows if row.errors]

    @property
    def is_valid(self) -> bool:
        return not self.errors and not self.error_rows and bool(self.rows)


@dataclass(frozen=True)
class ImportResult:
    customers: int
    sites: int
    devices: int
    unchanged: int


def import_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _require_admin(ctx: TenantContext) -> None:
    if ctx.role not in DEVICE_ADMIN_ROLES:
        raise PermissionDeniedError(_("Only a reseller admin may import devices."))


def _parse(data: bytes, plan: ImportPlan) -> list[ImportRow]:
    if len(data) > IMPORT_MAX_BYTES:
        plan.errors.append(f"The file is larger than {IMPORT_MAX_BYTES // 1024} KiB: split it.")
        return []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        plan.errors.append("The file is not UTF-8 text: save it as 'CSV UTF-8'.")
        return []
    if "\x00" in text:
        plan.errors.append("The file is not a CSV text file.")
        return []
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        first = next(reader)
        while not any(cell.strip() for cell in first):  # blank lines above the header
            first = next(reader)
        header = [column.strip().lower() for column in first]
    except StopIteration:
        plan.errors.append("The file is empty.")
        return []
    except csv.Error as error:
        plan.errors.append(f"Line 1: {error}.")
        return []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMN_LIMITS]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if missing:
        plan.errors.append(f"Missing column(s): {', '.join(missing)}.")
    if unknown:
        plan.errors.append(
            f"Unknown column(s): {', '.join(unknown)}; the columns are {', '.join(COLUMN_LIMITS)}."
        )
    if duplicated:
        plan.errors.append(f"Column(s) given twice: {', '.join(duplicated)}.")
    if plan.errors:
        return []
    rows: list[ImportRow] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # blank lines, spreadsheets' trailing rows
            if len(rows) == IMPORT_MAX_ROWS:
                plan.errors.append(f"More than {IMPORT_MAX_ROWS} rows: split the file.")
                return []
            row = ImportRow(
                line=reader.line_num,
                values={c: cell.strip() for c, cell in zip(header, cells, strict=False)},
            )
            if len(cells) > len(header):
                row.errors.append(f"{len(cells)} cells, but the header has {len(header)}.")
            rows.append(row)
    except csv.Error as error:
        plan.errors.append(f"Line {reader.line_num}: {error}.")
        return []
    if not rows:
        plan.errors.append("The file has a header but no rows.")
    return rows


def _check_cells(row: ImportRow) -> None:
    for column in ("customer", "site"):
        if not row.get(column):
            row.errors.append(f"{column}: required.")
    for column, limit in COLUMN_LIMITS.items():
        if column != "country" and len(row.get(column)) > limit:
            row.errors.append(f"{column}: at most {limit} characters.")
    country = row.get("country").upper()
    if country:
        if COUNTRY.match(country):
            row.values["country"] = country
        else:
            row.errors.append("country: a two-letter ISO 3166 code, e.g. DE.")


def device_import_preview(*, ctx: TenantContext, data: bytes) -> ImportPlan:
    """What importing `data` would do, row by row; writes nothing."""
    _require_admin(ctx)
    plan = ImportPlan(digest=import_digest(data))
    plan.rows = _parse(data, plan)
    if plan.errors:
        return plan
    customers = {c.name.lower(): c for c in Customer.objects.for_tenant(ctx)}
    sites = {
        (s.customer_id, s.name.lower()): s
        for s in Site.objects.for_tenant(ctx).select_related("customer")
    }
    serials = {row.get("serial") for row in plan.rows if row.get("serial")}
    devices = {
        d.serial: d
        for d in Device.objects.for_tenant(ctx)
        .filter(serial__in=sorted(serials))
        .select_related("customer", "site")
    }
    new_customers: dict[str, str] = {}
    new_sites: dict[tuple[str, str], tuple[str, str]] = {}
    serial_lines: dict[str, int] = {}
    for row in plan.rows:
        _check_cells(row)
        if row.errors:
            continue
        customer_name, site_name, serial = row.get("customer"), row.get("site"), row.get("serial")
        customer = customers.get(customer_name.lower())
        site = sites.get((customer.pk, site_name.lower())) if customer is not None else None
        if customer is None and customer_name.lower() not in new_customers:
            new_customers[customer_name.lower()] = customer_name
            row.actions.append(f"new customer {customer_name}")
        site_key = (customer_name.lower(), site_name.lower())
        if site is None and site_key not in new_sites:
            new_sites[site_key] = (
                new_customers.get(customer_name.lower(), customer_name),
                site_name,
            )
            row.actions.append(f"new site {site_name}")
        if not serial:
            continue
        if serial in serial_lines:
            row.errors.append(f"serial {serial}: also on line {serial_lines[serial]}.")
            continue
        serial_lines[serial] = row.line
        device = devices.get(serial)
        if device is None:
            row.actions.append(f"new printer {serial}")
            plan.new_devices.append(serial)
        elif site is not None and device.site_id == site.pk:
            row.actions.append(f"printer {serial} exists here: unchanged")
            plan.unchanged_devices += 1
        else:
            row.errors.append(
                f"serial {serial}: registered to {device.customer.name} / {device.site.name}; "
                "move it on its own page."
            )
    plan.new_customers = list(new_customers.values())
    plan.new_sites = list(new_sites.values())
    return plan


def device_import_apply(*, ctx: TenantContext, data: bytes, digest: str) -> ImportResult:
    """Import the previewed file: every row or none."""
    _require_admin(ctx)
    if import_digest(data) != digest:
        raise ConflictError(
            _("The file is not the one previewed: upload it again."), code="import_changed"
        )
    try:
        with transaction.atomic():
            plan = device_import_preview(ctx=ctx, data=data)
            if not plan.is_valid:
                raise DomainError(
                    _("The file has errors: nothing was imported."), code="import_invalid"
                )
            return _apply(ctx, plan)
    except IntegrityError as exc:
        # Another user created one of these serials, customers or sites meanwhile.
        raise ConflictError(
            _("Something in the file was created meanwhile: preview it again."),
            code="import_conflict",
        ) from exc


def _apply(ctx: TenantContext, plan: ImportPlan) -> ImportResult:
    customers = {c.name.lower(): c for c in Customer.objects.for_tenant(ctx)}
    sites = {(s.customer_id, s.name.lower()): s for s in Site.objects.for_tenant(ctx)}
    created_customers = created_sites = 0
    new_serials = set(plan.new_devices)
    devices: list[Device] = []
    for row in plan.rows:
        name = row.get("customer")
        customer = customers.get(name.lower())
        if customer is None:
            customer = customer_create(ctx=ctx, name=name)
            customers[name.lower()] = customer
            created_customers += 1
        site = sites.get((customer.pk, row.get("site").lower()))
        if site is None:
            address = {
                "address_line1": row.get("address"),
                "postal_code": row.get("postal_code"),
                "city": row.get("city"),
                "country": row.get("country"),
            }
            site = site_create(ctx=ctx, customer_id=customer.pk, name=row.get("site"), **address)
            sites[(customer.pk, site.name.lower())] = site
            created_sites += 1
        if row.get("serial") in new_serials:
            devices.append(
                Device(
                    reseller_id=ctx.reseller_id,
                    customer=customer,
                    site=site,
                    serial=row.get("serial"),
                    name=row.get("name"),
                    model=row.get("model"),
                    manufacturer=row.get("manufacturer"),
                )
            )
    Device.objects.for_tenant(ctx).bulk_create(devices, batch_size=500)
    audit_record(
        ctx=ctx,
        action="device.import",
        detail={
            "digest": plan.digest,
            "customers": created_customers,
            "sites": created_sites,
            "devices": len(devices),
            "unchanged": plan.unchanged_devices,
            "serials": [d.serial for d in devices[:200]],
        },
    )
    return ImportResult(created_customers, created_sites, len(devices), plan.unchanged_devices)
