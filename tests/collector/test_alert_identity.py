"""An alert's `id` names its row of the printer's alert table, never a time: a collector that
restarts (or a printer whose sysUpTime the recording freezes) reports the same alert with a
different raised_at, but with the same id; a new raise is a new row, so a new id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
from inkmeter_collector import mib, urgent
from inkmeter_collector.printer import parse_alerts, parse_printer, to_snapshot
from inkmeter_collector.snmp import SnmpValue

from tests.collector import snmprec
from tests.collector.support import PRINTERS

KYOCERA = PRINTERS / "snmprec" / "printmaster_kyocera-ecosys-p2040dw.snmprec"
AT = datetime(2026, 12, 1, 8, 0, 0, tzinfo=UTC)


def readings() -> dict[str, SnmpValue]:
    return snmprec.load(KYOCERA)


def wire_alerts(values: dict[str, SnmpValue], at: datetime) -> list[dict[str, Any]]:
    return [alert.to_wire(at) for alert in parse_alerts(values)]


def move_row(values: dict[str, SnmpValue], old: str, new: str) -> dict[str, SnmpValue]:
    """The printer cleared row `old` and raised the same condition again as row `new`."""
    moved: dict[str, SnmpValue] = {}
    for oid, value in values.items():
        prefix = mib.PRT_ALERT + "."
        if oid.startswith(prefix) and oid.endswith("." + old):
            column = oid[len(prefix) : -len(old)]
            moved[prefix + column + new] = value
        else:
            moved[oid] = value
    return moved


def test_a_restart_changes_raised_at_but_not_the_id() -> None:
    before = wire_alerts(readings(), AT)
    # The next run: its clock 90 min later, the printer's sysUpTime (frozen in a recording,
    # running on a printer) as it comes; raised_at moves, the row does not.
    later = readings()
    uptime = later[mib.SYS_UPTIME]
    assert isinstance(uptime, int)
    later[mib.SYS_UPTIME] = uptime + 3601_37
    after = wire_alerts(later, AT + timedelta(minutes=90))
    frozen = wire_alerts(readings(), AT + timedelta(minutes=90))

    assert [a["raised_at"] for a in before] != [a["raised_at"] for a in after]
    assert [a["raised_at"] for a in before] != [a["raised_at"] for a in frozen]
    assert [a["id"] for a in before] == [a["id"] for a in after] == [a["id"] for a in frozen]
    # Three rows: 1.2 (general printer), 1.23 and 1.24 (the same output condition, twice).
    assert [a["id"].split(":")[0] for a in before] == ["1.2", "1.23", "1.24"]
    assert len({a["id"] for a in before}) == 3
    assert before[1]["code"] == before[2]["code"]


def test_the_id_names_index_group_location_code_and_description() -> None:
    alert = wire_alerts(readings(), AT)[1]
    index, group, location, code, digest = alert["id"].split(":")
    assert (index, group, location, code) == ("1.23", "10.1", "0", "1001")
    assert len(digest) == 8
    described = readings()
    described[mib.column(mib.PRT_ALERT, mib.ALERT_DESCRIPTION) + ".1.23"] = b"Output tray full"
    other = wire_alerts(described, AT)[1]
    assert other["id"] != alert["id"]
    assert other["id"].rsplit(":", 1)[0] == alert["id"].rsplit(":", 1)[0]
    relocated = readings()
    relocated[mib.column(mib.PRT_ALERT, mib.ALERT_LOCATION) + ".1.23"] = 4
    assert wire_alerts(relocated, AT)[1]["id"] != alert["id"]


def test_a_cleared_and_re_raised_alert_gets_a_new_id() -> None:
    first = wire_alerts(readings(), AT)
    again = wire_alerts(move_row(readings(), "1.2", "1.25"), AT + timedelta(hours=1))
    assert {a["code"] for a in again} == {a["code"] for a in first}
    assert first[0]["id"].startswith("1.2:")
    assert [a["id"] for a in again][-1].startswith("1.25:")
    assert first[0]["id"] not in {a["id"] for a in again}


def test_the_snapshot_with_alert_ids_follows_the_protocol(
    telemetry_schema: dict[str, object],
) -> None:
    snapshot = to_snapshot(
        parse_printer(readings()), snapshot_id="0f0e0d0c-0b0a-4908-8706-050403020100",
        collected_at=AT, ip="127.0.2.1",
    )  # fmt: skip
    batch = {"schema": "inkmeter.telemetry/1", "batch_id": snapshot["snapshot_id"],
             "snapshots": [snapshot]}  # fmt: skip
    jsonschema.validate(batch, telemetry_schema)
    assert all(len(alert["id"]) <= 128 for alert in snapshot["alerts"])


def test_a_critical_alert_is_urgent_by_its_id() -> None:
    jam = {"id": "1.7:8.2:0:8:5a1c3e0b", "code": "input.jam", "severity": "critical"}
    snap: dict[str, Any] = {"device": {"serial": "S"}, "supplies": [], "alerts": [jam]}
    reasons, seen = urgent.examine(snap, None, urgent.Seen())
    assert reasons == ["critical alert input.jam"]
    # The same row after a restart (another raised_at): not again.
    assert urgent.examine(snap | {"alerts": [jam | {"raised_at": "x"}]}, None, seen)[0] == []
    # Cleared and raised again between two polls: a new row, urgent again.
    again = snap | {"alerts": [jam | {"id": "1.9:8.2:0:8:5a1c3e0b"}]}
    assert urgent.examine(again, None, seen)[0] == ["critical alert input.jam"]
