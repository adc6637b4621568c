"""A printer alert is one alert, and one email, however often its sender restarts.

The collector derives an alert's raised_at from the printer's sysUpTime and prtAlertTime and its
own clock, so the same alert comes with a different raised_at after a restart (or a second's
rounding). Its `id`, built from the Printer-MIB alert table row, stays put; the portal keys the
alert by it. A new raise of the same condition is a new row of the printer's table, so a new id:
a new alert, and a new email."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import mail

from devices.models import Alert
from devices.simulator import rfc3339
from tests.devices.conftest import Post, Signed, snapshot

pytestmark = pytest.mark.django_db

END = datetime.now(tz=UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
JAM = {
    "id": "1.7:8.2:0:8:5a1c3e0b",  # prtAlert row 1.7, input 2, paper jam: its table identity
    "code": "input.jam",
    "severity": "critical",
    "description": "Paper jam in tray 2",
}


@pytest.fixture
def support_inbox(tenant: Any) -> str:
    tenant.reseller.support_email = "support@alpha.test"
    tenant.reseller.save(update_fields=["support_email"])
    return "support@alpha.test"


def alert_emails(inbox: str) -> list[Any]:
    return [m for m in mail.outbox if inbox in m.to and "printer alert" in m.subject]


def test_the_same_alert_with_a_shifted_raised_at_is_one_alert_and_one_email(
    post: Post, collector: Signed, support_inbox: str, django_capture_on_commit_callbacks: Any
) -> None:
    raised = END - timedelta(hours=3)
    # Before and after a collector restart: the derived raised_at moved by a few seconds.
    for at, raised_at in ((END - timedelta(hours=2), raised), (END, raised + timedelta(seconds=7))):
        with django_capture_on_commit_callbacks(execute=True):
            answer = post(
                collector, [snapshot(at=at, alerts=[JAM | {"raised_at": rfc3339(raised_at)}])]
            )
        assert answer.status_code == 202, answer.content
        assert answer.json()["accepted"] == 1

    alert = Alert.unscoped.get()
    assert (alert.code, alert.cleared_at) == ("input.jam", None)
    assert (alert.first_seen_at, alert.last_seen_at) == (END - timedelta(hours=2), END)
    emails = alert_emails(support_inbox)
    assert len(emails) == 1, [m.subject for m in emails]
    assert "Paper jam in tray 2" in emails[0].body


def test_a_cleared_and_re_raised_alert_is_a_new_alert_with_its_own_email(
    post: Post, collector: Signed, support_inbox: str, django_capture_on_commit_callbacks: Any
) -> None:
    again = JAM | {"id": "1.9:8.2:0:8:5a1c3e0b"}  # the printer's next row for the same jam
    for at, alerts in (
        (END - timedelta(hours=2), [JAM]),
        (END - timedelta(hours=1), []),  # cleared: the snapshot lists no alert
        (END, [again]),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            assert post(collector, [snapshot(at=at, alerts=alerts)]).status_code == 202

    first, second = Alert.unscoped.order_by("first_seen_at")
    assert (first.first_seen_at, first.cleared_at) == (
        END - timedelta(hours=2),
        END - timedelta(hours=1),
    )
    assert (second.first_seen_at, second.cleared_at) == (END, None)
    assert len(alert_emails(support_inbox)) == 2


def test_alerts_without_an_id_keep_their_raised_at_as_identity(
    post: Post, collector: Signed, support_inbox: str, django_capture_on_commit_callbacks: Any
) -> None:
    """A sender that gives no id (a direct-connect device) is keyed by its raised_at, as before:
    it promises the same raised_at while the alert stays raised."""
    legacy = {k: v for k, v in JAM.items() if k != "id"}
    first = legacy | {"raised_at": rfc3339(END - timedelta(hours=3))}
    later = legacy | {"raised_at": rfc3339(END - timedelta(minutes=30))}
    for at, alerts in (
        (END - timedelta(hours=2), [first]),
        (END - timedelta(hours=1), [first]),
        (END, [later]),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            assert post(collector, [snapshot(at=at, alerts=alerts)]).status_code == 202

    assert Alert.unscoped.count() == 2
    assert Alert.unscoped.filter(cleared_at=None).count() == 1
    assert len(alert_emails(support_inbox)) == 2
