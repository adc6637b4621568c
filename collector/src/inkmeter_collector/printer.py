"""Pure parsers: SNMP readings (OID -> value) in, a printer reading and its wire snapshot out.

No I/O happens here, so the tests feed these functions straight from the snmprec recordings as
well as from live polls of the simulator.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from inkmeter_collector import colours, mib, vendors
from inkmeter_collector.mib import SnmpValue

Readings = Mapping[str, SnmpValue]


@dataclass(frozen=True)
class Identity:
    serial: str | None
    serial_source: str | None
    manufacturer: str | None
    model: str | None
    firmware: str | None
    hostname: str | None
    mac: str | None
    enterprise: int | None
    sys_descr: str | None


@dataclass(frozen=True)
class Supply:
    index: str
    description: str
    kind: str
    color: str | None  # the printer's own colour name, canonical: "matte black"
    color_family: str | None  # its family (colours.FAMILIES): "black"
    is_receptacle: bool
    raw_class: int | None
    raw_type: int | None
    raw_unit: int | None
    raw_max: int | None
    raw_level: int | None
    level_state: str
    percent: float | None
    unit: str | None
    level: float | None
    max_capacity: float | None
    part_number: str | None
    serial: str | None

    @property
    def supply_id(self) -> str:
        # The table index is what stays put between polls; kind and colour make it readable.
        parts = [self.kind, *([self.color.replace(" ", "_")] if self.color else []), self.index]
        return "-".join(parts)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": self.supply_id,
            "kind": self.kind,
            "description": self.description[:255],
            "level_state": self.level_state,
        }
        if self.level is not None:
            wire["level"] = self.level
        if self.max_capacity is not None:
            wire["max_capacity"] = self.max_capacity
        if self.color:
            wire["color"] = self.color
        if self.color_family:
            wire["color_family"] = self.color_family
        if self.unit:
            wire["unit"] = self.unit
        if self.part_number:
            wire["part_number"] = self.part_number
        if self.serial:
            wire["serial"] = self.serial
        return wire


@dataclass(frozen=True)
class Counter:
    name: str
    value: float
    unit: str

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit}


@dataclass(frozen=True)
class Alert:
    code: str
    severity: str
    description: str
    raised_ago_s: float | None
    # Which raise this is (protocol, "alert identity"): its alert table row, never a time.
    key: str = ""

    def to_wire(self, collected_at: datetime) -> dict[str, Any]:
        wire: dict[str, Any] = {"code": self.code, "severity": self.severity}
        if self.key:
            wire["id"] = self.key[:128]
        if self.description:
            wire["description"] = self.description[:1000]
        if self.raised_ago_s is not None:
            wire["raised_at"] = rfc3339(collected_at - timedelta(seconds=self.raised_ago_s))
        return wire


@dataclass(frozen=True)
class PrinterReading:
    identity: Identity
    state: str
    detail: str
    error_flags: tuple[str, ...]
    supplies: tuple[Supply, ...]
    counters: tuple[Counter, ...]
    alerts: tuple[Alert, ...]
    media_sources: tuple[dict[str, Any], ...]
    is_color: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def page_count(self) -> float | None:
        for counter in self.counters:
            if counter.name in ("impressions.total", "sheets.total"):
                return counter.value
        return None


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- value helpers -------------------------------------------------------------------------------


def _text(value: SnmpValue | None) -> str | None:
    if isinstance(value, bytes):
        try:
            decoded = value.decode("utf-8")
        except UnicodeDecodeError:
            decoded = value.decode("latin-1")
        return decoded
    if isinstance(value, str):
        return value
    return None


def _clean(value: SnmpValue | None) -> str | None:
    text = _text(value)
    if text is None:
        return None
    text = text.strip().strip("\x00").strip()
    return text or None


def _int(value: SnmpValue | None) -> int | None:
    return value if isinstance(value, int) else None


def _rows(readings: Readings, column: str) -> dict[str, SnmpValue]:
    """Rows of one table column, keyed by the instance suffix (`1.5`)."""
    prefix = column + "."
    return {oid[len(prefix) :]: value for oid, value in readings.items() if oid.startswith(prefix)}


def _index_key(index: str) -> tuple[int, ...]:
    return tuple(int(part) for part in index.split(".") if part.isdigit())


_SERIAL_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{2,127}$")


def _plausible_serial(text: str | None) -> str | None:
    if not text:
        return None
    text = text.strip()
    if not _SERIAL_OK.match(text) or set(text) <= {"0", "-", "."}:
        return None
    if text.lower() in {"unknown", "none", "n/a", "serial", "private"}:
        return None
    return text


# --- identity ------------------------------------------------------------------------------------

_GENERIC_HR = re.compile(r"^(generic\b|unknown\b|printer$|network interface)", re.IGNORECASE)
_PRINT_SERVER = re.compile(
    r"(built-in|printing system|ethernet|print ?server|\bNC-\d|jetdirect)", re.IGNORECASE
)
_FAMILY = re.compile(r"\d+x$")
_SERIES = re.compile(r"\s+series$", re.IGNORECASE)
_SYSDESCR_SERIAL = re.compile(r"\b(?:SN|S/N)\s*[:#]?\s*([A-Za-z0-9][A-Za-z0-9-]{3,})")


def _sysdescr_model(sys_descr: str | None) -> str | None:
    if not sys_descr:
        return None
    attached = re.search(r"Attached to (\S+)", sys_descr)
    if attached and sys_descr.upper().startswith("OKI"):
        return f"OKI {attached.group(1)}"
    if _PRINT_SERVER.search(sys_descr):
        return None
    head = re.split(r";| version | / | /|,", sys_descr, maxsplit=1)[0].strip()
    return head or None


def _pick_model(
    sys_descr: str | None, hr_descr: str | None, vendor: vendors.Vendor | None
) -> str | None:
    hr = _SERIES.sub("", hr_descr).strip() if hr_descr else None
    from_sys = _sysdescr_model(sys_descr)
    if hr and not _GENERIC_HR.match(hr):
        if from_sys and from_sys != hr:
            hr_words, sys_words = hr.split(), from_sys.split()
            # hrDeviceDescr with serial/firmware appended (Dell), or a family name such as
            # "Samsung M408x" where sysDescr names the exact model.
            if hr.startswith(from_sys + " ") or (
                _FAMILY.search(hr_words[-1]) and hr_words[0].lower() == sys_words[0].lower()
            ):
                return from_sys
        if vendor and sys_descr:
            for prefix, brand in vendor.oem_brands:
                if sys_descr.startswith(prefix) and not hr.startswith(brand):
                    return f"{brand} {hr}"
        return hr
    return from_sys or hr


def _mac(readings: Readings) -> str | None:
    rows = _rows(readings, mib.IF_PHYS_ADDRESS)
    for index in sorted(rows, key=_index_key):
        value = rows[index]
        if isinstance(value, bytes) and len(value) == 6 and any(value):
            return ":".join(f"{byte:02x}" for byte in value)
    return None


def _serial(
    readings: Readings, vendor: vendors.Vendor | None, sys_descr: str | None, mac: str | None
) -> tuple[str | None, str | None]:
    serial = _plausible_serial(_clean(readings.get(f"{mib.PRT_GENERAL_SERIAL}.1")))
    if serial:
        return serial, "prtGeneralSerialNumber.1"
    for spec in vendor.serials if vendor else ():
        raw = readings.get(spec.oid)
        if isinstance(raw, bytes) and spec.strip_prefix and raw.startswith(spec.strip_prefix):
            raw = raw[len(spec.strip_prefix) :]
        serial = _plausible_serial(_clean(raw))
        if serial:
            return serial, spec.oid
    if sys_descr:
        match = _SYSDESCR_SERIAL.search(sys_descr)
        if match and _plausible_serial(match.group(1)):
            return match.group(1), "sysDescr"
    if mac:
        # No serial anywhere: the interface's MAC address is the next identifier that does not
        # change with DHCP. Marked so that nobody takes it for a serial number.
        return "MAC-" + mac.replace(":", "").upper(), "ifPhysAddress"
    return None, None


DERIVED_PREFIX = "NOSERIAL-"
DERIVED_SOURCE = "derived"


def derived_serial(*, where: str, sys_object_id: str | None, model: str | None) -> str:
    """A stable stand-in for a printer that reports neither a serial nor a MAC address.

    `where` is the collector's installation id plus the address and port it polls the printer
    at, which stay put across polls and reboots (printers keep fixed addresses so that people can
    print); sysObjectID and the model tell a different printer later put at that address. Left
    out on purpose: sysName and sysUpTime (people rename printers; uptime restarts), supply
    serials (cartridges change) and the resolved IP of a DNS name (DHCP may move it).
    """
    key = "\n".join((where, sys_object_id or "", model or "")).encode("utf-8", "replace")
    return DERIVED_PREFIX + hashlib.sha256(key).hexdigest()[:16].upper()


def parse_identity(
    readings: Readings, *, serial_override: str | None = None, where: str | None = None
) -> Identity:
    """`where` (installation id and address) lets a printer without serial or MAC get a
    derived identity; without it such a printer has no serial."""
    sys_descr = _clean(readings.get(mib.SYS_DESCR))
    sys_object_id = readings.get(mib.SYS_OBJECT_ID)
    object_id = sys_object_id if isinstance(sys_object_id, str) else None
    enterprise = vendors.enterprise_of(object_id)
    vendor = vendors.VENDORS.get(enterprise) if enterprise is not None else None
    mac = _mac(readings)
    hr_descr = _clean(readings.get(f"{mib.HR_DEVICE_DESCR}.1"))
    model = _pick_model(sys_descr, hr_descr, vendor)
    serial: str | None
    source: str | None
    if serial_override:
        serial, source = serial_override, "configuration"
    else:
        serial, source = _serial(readings, vendor, sys_descr, mac)
    if serial is None and where:
        serial = derived_serial(where=where, sys_object_id=object_id, model=model)
        source = DERIVED_SOURCE
    firmware = _clean(readings.get(vendor.firmware_oid)) if vendor and vendor.firmware_oid else None
    return Identity(
        serial=serial,
        serial_source=source,
        manufacturer=vendor.name if vendor else None,
        model=model,
        firmware=firmware,
        hostname=_clean(readings.get(mib.SYS_NAME)),
        mac=mac,
        enterprise=enterprise,
        sys_descr=sys_descr,
    )


# --- supplies ------------------------------------------------------------------------------------

_KIND_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (r"\bwaste\b", "waste"),
        (r"\btoner\b", "toner"),
        (r"\bink\b", "ink"),
        (r"print ?head", "printhead"),
        (r"\b(drum|photoconductor|opc|imaging unit)\b", "drum"),
        (r"\bdeveloper\b", "developer"),
        (r"\b(fuser|fusing)\b", "fuser"),
        (r"\b(transfer|belt)\b", "transfer"),
        (r"\bstapl", "staples"),
        (r"\bcartridge\b", "toner"),
        (r"\b(maintenance|kit|roller|filter|clean)", "maintenance"),
    )
)


def _supply_kind(raw_type: int | None, description: str, device_has_ink: bool) -> str:
    kind = mib.SUPPLY_TYPE_KIND.get(raw_type, "other") if raw_type is not None else "other"
    if kind != "other":
        return kind
    for pattern, guessed in _KIND_WORDS:
        if pattern.search(description):
            if guessed == "toner" and device_has_ink and "toner" not in description.lower():
                return "ink"
            return guessed
    return "other"


def _level_and_capacity(
    raw_level: int | None, raw_max: int | None, raw_unit: int | None
) -> tuple[str, float | None, str | None, float | None, float | None]:
    """level_state, percent, unit, level and capacity in that unit."""
    level_state = mib.LEVEL_STATES.get(raw_level, "ok") if raw_level is not None else "unknown"
    if raw_level is not None and raw_level < 0 and raw_level not in mib.LEVEL_STATES:
        level_state = "unknown"  # a negative level RFC 3805 does not define
    has_level = level_state == "ok" and raw_level is not None
    has_max = raw_max is not None and raw_max > 0
    percent = None
    if has_level and has_max and raw_level is not None and raw_max is not None:
        percent = min(100.0, round(raw_level / raw_max * 100, 2))
    declared = mib.SUPPLY_UNITS.get(raw_unit) if raw_unit is not None else None
    if declared:
        unit, factor = declared
    elif raw_max == 100:
        # Max 100 without a declared unit (or with "other") is a percentage in practice.
        unit, factor = "percent", 1.0
    else:
        unit, factor = None, 1.0
    level = _scaled(raw_level, factor) if has_level else None
    capacity = _scaled(raw_max, factor) if has_max else None
    if unit == "percent" and level is not None:
        level = min(level, 100.0)
    return level_state, percent, unit, level, capacity


def _scaled(raw: int | None, factor: float) -> float | None:
    if raw is None:
        return None
    return raw if factor == 1 else round(raw * factor, 3)


def parse_supplies(
    readings: Readings, vendor: vendors.Vendor | None, notes: list[str] | None = None
) -> tuple[Supply, ...]:
    """The supplies table; `notes` collects what the parser had to overrule."""

    def col(number: int) -> dict[str, SnmpValue]:
        return _rows(readings, mib.column(mib.PRT_SUPPLIES, number))

    columns = {number: col(number) for number in mib.SUPPLY_COLUMNS}
    colorants = {
        index: (_clean(value) or "").lower()
        for index, value in _rows(readings, mib.PRT_COLORANT_VALUE).items()
    }
    indices = sorted({index for rows in columns.values() for index in rows}, key=_index_key)
    descriptions = {i: _text(columns[mib.SUP_DESCRIPTION].get(i)) or "" for i in indices}
    types = {i: _int(columns[mib.SUP_TYPE].get(i)) for i in indices}
    device_has_ink = any(
        mib.SUPPLY_TYPE_KIND.get(t or 0) == "ink" or re.search(r"\bink\b", d, re.IGNORECASE)
        for t, d in zip(types.values(), descriptions.values(), strict=True)
    )
    supplies = []
    for index in indices:
        description = descriptions[index]
        raw_class = _int(columns[mib.SUP_CLASS].get(index))
        raw_type = types[index]
        raw_unit = _int(columns[mib.SUP_UNIT].get(index))
        raw_max = _int(columns[mib.SUP_MAX].get(index))
        raw_level = _int(columns[mib.SUP_LEVEL].get(index))
        colorant_index = _int(columns[mib.SUP_COLORANT_INDEX].get(index))
        device_index = index.split(".", 1)[0]
        colorant = (
            colorants.get(f"{device_index}.{colorant_index}") or None if colorant_index else None
        )
        is_receptacle = (
            raw_class == mib.SUPPLY_CLASS_RECEPTACLE
            or raw_type in mib.WASTE_SUPPLY_TYPES
            or "waste" in description.lower()
        )
        kind = _supply_kind(raw_type, description, device_has_ink)
        if is_receptacle:
            kind = "waste"
        level_state, percent, unit, level, capacity = _level_and_capacity(
            raw_level, raw_max, raw_unit
        )
        color, color_family, overruled = colours.of_supply(description, colorant)
        if overruled and notes is not None:
            notes.append(
                f"supply {index}: the colorant table says {colorant}, its description"
                f" {description.strip()!r}; the description is trusted"
            )
        supplies.append(
            Supply(
                index=index,
                description=description.strip(),
                kind=kind,
                color=color,
                color_family=color_family,
                is_receptacle=is_receptacle,
                raw_class=raw_class,
                raw_type=raw_type,
                raw_unit=raw_unit,
                raw_max=raw_max,
                raw_level=raw_level,
                level_state=level_state,
                percent=percent,
                unit=unit,
                level=level,
                max_capacity=capacity,
                part_number=vendors.part_number(vendor, description.strip()),
                serial=vendors.supply_serial(description),
            )
        )
    return tuple(supplies)


# --- status, alerts, media -----------------------------------------------------------------------


def _error_flags(value: SnmpValue | None) -> tuple[str, ...]:
    if not isinstance(value, bytes):
        return ()
    flags = []
    for bit, name in enumerate(mib.ERROR_STATE_BITS):
        byte = bit // 8
        if byte < len(value) and value[byte] & (0x80 >> (bit % 8)):
            flags.append(name)
    return tuple(flags)


def _words(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", " ", camel).lower()


def _status(readings: Readings, flags: tuple[str, ...]) -> tuple[str, str]:
    printer_status = _int(readings.get(f"{mib.HR_PRINTER_STATUS}.1"))
    device_status = _int(readings.get(f"{mib.HR_DEVICE_STATUS}.1"))
    state = mib.PRINTER_STATUS.get(printer_status, "unknown") if printer_status else "unknown"
    if device_status == mib.DEVICE_STATUS_DOWN or set(flags) & mib.ERROR_STATE_CRITICAL:
        state = "error"
    elif state not in ("printing", "warmup") and (
        flags or device_status == mib.DEVICE_STATUS_WARNING
    ):
        state = "warning"
    detail = ", ".join(_words(flag) for flag in flags)
    if not detail and state == "idle":
        detail = "ready"
    return state, detail


def alert_key(
    index: str, group: int, group_index: int | None, location: int | None, code: int, text: str
) -> str:
    """The identity of one raise of an alert: its prtAlertTable row (`hrDeviceIndex.
    prtAlertIndex`, which the printer takes anew for every alert it adds), the subunit it names
    (group and group index), location and code, and a digest of its description, as
    `1.23:10.1:0:1001:e3b0c442`. No time: the raised_at derived from prtAlertTime, sysUpTime
    and this host's clock moves between polls and restarts; this does not, so the portal sees
    one alert (and sends one email) until the printer clears it."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    subunit = f"{group}.{group_index if group_index is not None else ''}"
    where = "" if location is None else str(location)
    return f"{index}:{subunit}:{where}:{code}:{digest}"


def parse_alerts(readings: Readings) -> tuple[Alert, ...]:
    def col(number: int) -> dict[str, SnmpValue]:
        return _rows(readings, mib.column(mib.PRT_ALERT, number))

    severities, groups, codes = col(mib.ALERT_SEVERITY), col(mib.ALERT_GROUP), col(mib.ALERT_CODE)
    group_indexes, locations = col(mib.ALERT_GROUP_INDEX), col(mib.ALERT_LOCATION)
    descriptions, times = col(mib.ALERT_DESCRIPTION), col(mib.ALERT_TIME)
    uptime = _int(readings.get(mib.SYS_UPTIME))
    alerts = []
    for index in sorted(set(severities) | set(codes), key=_index_key):
        group_number = _int(groups.get(index)) or 1
        code_number = _int(codes.get(index)) or 1
        group = mib.ALERT_GROUPS.get(group_number, f"group_{group_number}")
        code = mib.ALERT_CODES.get(code_number, f"code_{code_number}")
        description = _clean(descriptions.get(index)) or ""
        ticks = _int(times.get(index))
        ago = (uptime - ticks) / 100 if uptime is not None and ticks is not None else None
        alerts.append(
            Alert(
                code=f"{group}.{code}",
                severity=mib.ALERT_SEVERITY_NAMES.get(_int(severities.get(index)) or 0, "info"),
                description=description,
                raised_ago_s=ago if ago is not None and ago >= 0 else None,
                key=alert_key(
                    index,
                    group_number,
                    _int(group_indexes.get(index)),
                    _int(locations.get(index)),
                    code_number,
                    description,
                ),
            )
        )
    return tuple(alerts)


def parse_media_sources(readings: Readings) -> tuple[dict[str, Any], ...]:
    def col(number: int) -> dict[str, SnmpValue]:
        return _rows(readings, mib.column(mib.PRT_INPUT, number))

    dim_units, feed, xfeed = (
        col(mib.INPUT_DIM_UNIT),
        col(mib.INPUT_DIM_FEED),
        col(mib.INPUT_DIM_XFEED),
    )
    max_caps, levels = col(mib.INPUT_MAX_CAPACITY), col(mib.INPUT_CURRENT_LEVEL)
    media_names, names = col(mib.INPUT_MEDIA_NAME), col(mib.INPUT_NAME)
    sources = []
    for index in sorted(set(levels) | set(names) | set(max_caps), key=_index_key):
        mm_per_unit = mib.INPUT_DIM_UNITS_MM.get(_int(dim_units.get(index)) or 0)

        def dimension(raw: SnmpValue | None, per_unit: float | None = mm_per_unit) -> float | None:
            value = _int(raw)
            return round(value * per_unit, 1) if value and value > 0 and per_unit else None

        level = _int(levels.get(index))
        status = "unknown" if level is None or level == mib.LEVEL_UNKNOWN else "loaded"
        if level == 0:
            status = "empty"
        source: dict[str, Any] = {"id": f"input-{index}", "status": status}
        if width := dimension(xfeed.get(index)):
            source["width_mm"] = width
        if length := dimension(feed.get(index)):
            source["length_mm"] = length
        if name := _clean(names.get(index)):
            source["name"] = name
        if media := _clean(media_names.get(index)):
            source["media_type"] = media
        if level is not None and level >= 0:
            source["level"] = level
        max_capacity = _int(max_caps.get(index))
        if max_capacity is not None and max_capacity > 0:
            source["max_capacity"] = max_capacity
        sources.append(source)
    return tuple(sources)


# --- counters ------------------------------------------------------------------------------------


def parse_counters(
    readings: Readings, vendor: vendors.Vendor | None, is_color: bool
) -> tuple[Counter, ...]:
    units = _rows(readings, mib.column(mib.PRT_MARKER, mib.MARKER_COUNTER_UNIT))
    counts = _rows(readings, mib.column(mib.PRT_MARKER, mib.MARKER_LIFE_COUNT))
    totals: dict[str, tuple[float, str]] = {}
    for index, value in counts.items():
        if not isinstance(value, int) or value < 0:
            continue
        name, unit, factor = mib.MARKER_COUNTER_UNITS.get(
            _int(units.get(index)) or 7, ("impressions.total", "impressions", 1)
        )
        previous = totals.get(name, (0.0, unit))[0]
        totals[name] = (previous + value * factor, unit)
    for spec in vendor.counters if vendor else ():
        values = [readings.get(oid) for oid in spec.oids]
        numbers = [value for value in values if isinstance(value, int) and value >= 0]
        if not numbers or (spec.only_if_missing and totals):
            continue
        totals[spec.name] = (float(sum(numbers)), spec.unit)
    if not is_color and "impressions.total" in totals and "impressions.mono" not in totals:
        # A monochrome printer's impressions are all mono ones.
        totals["impressions.mono"] = totals["impressions.total"]
    return tuple(
        Counter(name=name, value=int(value) if float(value).is_integer() else value, unit=unit)
        for name, (value, unit) in sorted(totals.items())
    )


# --- the whole printer ---------------------------------------------------------------------------


def parse_printer(
    readings: Readings, *, serial_override: str | None = None, where: str | None = None
) -> PrinterReading:
    identity = parse_identity(readings, serial_override=serial_override, where=where)
    vendor = vendors.VENDORS.get(identity.enterprise) if identity.enterprise else None
    notes: list[str] = []
    supplies = parse_supplies(readings, vendor, notes)
    families = {supply.color_family for supply in supplies}
    families |= {
        colours.family(colours.name(_clean(value)))
        for value in _rows(readings, mib.PRT_COLORANT_VALUE).values()
    }
    is_color = bool(families & colours.CHROMATIC)
    flags = _error_flags(readings.get(f"{mib.HR_PRINTER_ERROR_STATE}.1"))
    state, detail = _status(readings, flags)
    return PrinterReading(
        identity=identity,
        state=state,
        detail=detail,
        error_flags=flags,
        supplies=supplies,
        counters=parse_counters(readings, vendor, is_color),
        alerts=parse_alerts(readings),
        media_sources=parse_media_sources(readings),
        is_color=is_color,
        notes=tuple(notes),
    )


def is_printer(readings: Readings) -> bool:
    """Host Resources says printer, or the Printer-MIB answers at all."""
    types = _rows(readings, mib.HR_DEVICE_TYPE)
    if any(value == mib.HR_DEVICE_PRINTER for value in types.values()):
        return True
    return any(oid.startswith(mib.PRINTER_MIB + ".") for oid in readings)


def to_snapshot(
    reading: PrinterReading, *, snapshot_id: str, collected_at: datetime, ip: str | None
) -> dict[str, Any]:
    """The wire-contract snapshot (protocol/telemetry-v1.md). Requires a serial."""
    identity = reading.identity
    if not identity.serial:
        raise ValueError("a snapshot needs a device serial")
    device: dict[str, Any] = {"serial": identity.serial[:128]}
    for key, value, limit in (
        ("manufacturer", identity.manufacturer, 128),
        ("model", identity.model, 255),
        ("firmware", identity.firmware, 128),
        ("ip", ip, 64),
        ("hostname", identity.hostname, 255),
        ("mac", identity.mac, 64),
    ):
        if value:
            device[key] = value[:limit]
    snapshot: dict[str, Any] = {
        "snapshot_id": snapshot_id,
        "collected_at": rfc3339(collected_at),
        "device": device,
        "status": {
            "state": reading.state,
            **({"detail": reading.detail} if reading.detail else {}),
        },
        "counters": [counter.to_wire() for counter in reading.counters],
        "supplies": [supply.to_wire() for supply in reading.supplies],
    }
    if reading.media_sources:
        snapshot["media_sources"] = list(reading.media_sources)
    if reading.alerts:
        snapshot["alerts"] = [alert.to_wire(collected_at) for alert in reading.alerts]
    return snapshot
