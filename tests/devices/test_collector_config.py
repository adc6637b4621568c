"""The collector configuration as the portal takes and serves it: the one address-range
definition (tests/data/ip_ranges.json, read by the collector's tests too), the form and the API
refusing what the collector would refuse, and the signed config never serving such a range."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devices import ip_ranges, services
from devices.models import Credential
from devices.simulator import signed_headers
from portal.errors import DomainError
from tests.devices.conftest import Signed

pytestmark = pytest.mark.django_db
CONFIG = "/api/v1/collector/config"
VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "ip_ranges.json").read_text(encoding="utf-8")
)


def _get_config(client: Any, signed: Signed) -> Any:
    headers = signed_headers(
        key_id=signed.credential.key_id, secret=signed.secret, method="GET", path=CONFIG, body=b""
    )
    return client.get(CONFIG, headers=headers)


def _update(tenant: Any, signed: Signed, ranges: list[str]) -> Credential:
    return services.collector_config_update(
        ctx=tenant.ctx(),
        credential_id=signed.credential.pk,
        ranges=ranges,
        communities=["public"],
        poll_interval_minutes=30,
        upload_interval_minutes=15,
    )


@pytest.mark.django_db(False)
def test_limit_is_the_documented_one() -> None:
    assert VECTORS["max_addresses"] == ip_ranges.MAX_ADDRESSES


@pytest.mark.django_db(False)
@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["input"])
def test_valid_range(vector: dict[str, Any]) -> None:
    parsed = ip_ranges.range_parse(vector["input"])
    assert (parsed.text, str(parsed.first), str(parsed.last), parsed.count) == (
        vector["normalised"],
        vector["first"],
        vector["last"],
        vector["count"],
    )


@pytest.mark.django_db(False)
@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["input"] or "empty")
def test_invalid_range(vector: dict[str, Any]) -> None:
    with pytest.raises(ip_ranges.RangeError) as raised:
        ip_ranges.range_parse(vector["input"])
    assert (raised.value.code, raised.value.message) == (vector["code"], vector["message"])


def test_every_valid_form_is_stored_normalised_and_served(
    client: Any, collector: Signed, tenant: Any
) -> None:
    _update(tenant, collector, [v["input"] for v in VECTORS["valid"]])
    served = _get_config(client, collector).json()["ranges"]
    assert served == [v["normalised"] for v in VECTORS["valid"]]


@pytest.mark.parametrize("vector", VECTORS["invalid"][:7], ids=lambda v: v["input"])
def test_service_refuses_with_the_shared_message_and_changes_nothing(
    collector: Signed, tenant: Any, vector: dict[str, Any]
) -> None:
    with pytest.raises(DomainError) as refused:
        _update(tenant, collector, ["192.0.2.0/24", vector["input"]])
    assert refused.value.fields == {"ranges": [vector["message"]]}
    collector.credential.refresh_from_db()
    assert (collector.credential.config_version, collector.credential.ranges) == (1, [])


def test_form_shows_the_error_next_to_the_ranges_field(
    login: Any, alice: Any, collector: Signed
) -> None:
    url = f"/settings/collectors/{collector.credential.pk}/config/"
    response = login(alice).post(
        url,
        {
            "ranges": "192.0.2.10-192.0.2.50\n0.0.0.0/0",
            "communities": "public",
            "poll_interval_minutes": 30,
            "upload_interval_minutes": 15,
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors == {
        "ranges": [
            "'0.0.0.0/0' covers 4,294,967,296 addresses; at most 65,536 (an IPv4 /16) can be"
            " swept: give smaller ranges."
        ]
    }
    page = response.content.decode()
    field = page[page.index('<div class="field has-error">') :]
    assert field.index("id_ranges") < field.index("covers 4,294,967,296 addresses")
    collector.credential.refresh_from_db()
    assert collector.credential.config_version == 1


def test_form_saves_every_offered_form(login: Any, alice: Any, collector: Signed) -> None:
    url = f"/settings/collectors/{collector.credential.pk}/config/"
    response = login(alice).post(
        url,
        {
            "ranges": "192.0.2.0/24\n192.0.2.10 - 192.0.2.50, 192.0.2.99",
            "communities": "public",
            "poll_interval_minutes": 30,
            "upload_interval_minutes": 15,
        },
    )
    assert response.status_code == 302
    collector.credential.refresh_from_db()
    assert collector.credential.ranges == ["192.0.2.0/24", "192.0.2.10-192.0.2.50", "192.0.2.99"]


def test_api_refuses_an_absurd_range_with_the_field_named(
    login: Any, alice: Any, collector: Signed
) -> None:
    response = login(alice).put(
        f"/api/v1/credentials/{collector.credential.pk}/config",
        {
            "ranges": ["::/0"],
            "communities": ["public"],
            "poll_interval_minutes": 30,
            "upload_interval_minutes": 15,
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["fields"] == {
        "ranges": [
            "'::/0' covers 340,282,366,920,938,463,463,374,607,431,768,211,456 addresses; at most"
            " 65,536 (an IPv4 /16) can be swept: give smaller ranges."
        ]
    }
    collector.credential.refresh_from_db()
    assert collector.credential.config_version == 1


def test_a_stored_range_the_collector_refuses_is_never_served(
    client: Any, collector: Signed
) -> None:
    # A row written before the rule existed.
    Credential.unscoped.filter(pk=collector.credential.pk).update(
        ranges=["0.0.0.0/0", "192.0.2.10-192.0.2.50", "10.0.0.0/8"]
    )
    response = _get_config(client, collector)
    assert response.status_code == 200
    assert response.json()["ranges"] == ["192.0.2.10-192.0.2.50"]


@pytest.mark.django_db(transaction=True)
def test_the_collector_applies_what_the_portal_serves(
    live_server: Any, collector: Signed, tenant: Any, tmp_path: Path
) -> None:
    """The seam itself: the real collector fetches the real portal's signed answer over HTTP."""
    from inkmeter_collector import cli, config
    from inkmeter_collector.outbox import Outbox
    from inkmeter_collector.upload import Portal

    _update(tenant, collector, ["192.0.2.10-192.0.2.50", "192.0.2.0/28", "192.0.2.99"])
    portal = Portal(
        url=live_server.url, key_id=collector.credential.key_id, secret=collector.secret
    )
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    base = config.Config(ranges=("127.0.0.0/30",))
    try:
        applied = cli.refresh_portal_config(base, base, outbox, portal)
    finally:
        portal.close()
        outbox.close()
    assert applied.ranges == ("192.0.2.10-192.0.2.50", "192.0.2.0/28", "192.0.2.99")
    assert (applied.config_version, applied.poll_interval_minutes) == (2, 30)
    assert (applied.communities, applied.upload_interval_minutes) == (("public",), 15)
    assert applied.reorder_threshold("any") == 15


def test_config_carries_the_default_reorder_threshold(client: Any, collector: Signed) -> None:
    answer = _get_config(client, collector).json()
    assert (answer["reorder_threshold_percent"], answer["reorder_thresholds"]) == (15, {})


def test_config_carries_the_customer_policy_and_this_sites_device_overrides(
    client: Any, collector: Signed, tenant: Any, foreign_tenant: Any
) -> None:
    from orders.catalog_services import policy_set
    from tests.factories import DeviceFactory, SiteFactory

    here = DeviceFactory(site=tenant.site, serial="HERE-1")
    DeviceFactory(site=tenant.site, serial="HERE-2")  # no override: the customer's threshold
    elsewhere = DeviceFactory(site=SiteFactory(customer=tenant.customer), serial="ELSEWHERE")
    foreign = DeviceFactory(site=foreign_tenant.site, serial="FOREIGN")
    ctx = tenant.ctx()
    policy = {"lead_time_days": 7, "mode": "alert"}
    policy_set(ctx=ctx, customer_id=tenant.customer.pk, threshold_percent=25, **policy)
    policy_set(
        ctx=ctx, customer_id=tenant.customer.pk, device_id=here.pk, threshold_percent=5, **policy
    )
    policy_set(
        ctx=ctx,
        customer_id=tenant.customer.pk,
        device_id=elsewhere.pk,
        threshold_percent=40,
        **policy,
    )
    policy_set(
        ctx=foreign_tenant.ctx(),
        customer_id=foreign_tenant.customer.pk,
        device_id=foreign.pk,
        threshold_percent=50,
        **policy,
    )
    answer = _get_config(client, collector).json()
    assert (answer["reorder_threshold_percent"], answer["reorder_thresholds"]) == (
        25,
        {"HERE-1": 5},
    )


def test_config_answer_costs_one_query_for_the_thresholds(
    collector: Signed, django_assert_num_queries: Any
) -> None:
    credential = Credential.unscoped.select_related("reseller").get(pk=collector.credential.pk)
    with django_assert_num_queries(1):
        answer = services.collector_config(credential)
    assert answer["reorder_threshold_percent"] == 15
