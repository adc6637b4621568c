"""REST API of the devices app. Thin. Device credentials and collector configuration, for
reseller admins; the fleet read by integrations: devices, supplies, counters, meter reads and
alerts (docs/api.md).

The telemetry endpoint itself is not here: it is the plain view devices.ingest.telemetry."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devices import fleet_selectors, selectors, services
from devices.fleet_selectors import DeviceStatus, Lifecycle
from devices.models import Alert, Credential, Device, Supply
from devices.openapi import REORDER_THRESHOLD_HELP, REORDER_THRESHOLDS_HELP
from portal.api import IdField, KeysetPagination, Pagination, request_ctx
from portal.errors import DomainError
from portal.openapi import error_response
from portal.tenancy import ADMIN_ROLES


class CredentialOut(serializers.ModelSerializer):
    site = serializers.IntegerField(source="site_id", allow_null=True)
    device = serializers.IntegerField(source="device_id", allow_null=True)
    device_serial = serializers.SerializerMethodField()
    status = serializers.CharField()

    class Meta:
        model = Credential
        fields = [
            "id",
            "kind",
            "name",
            "key_id",
            "customer",
            "site",
            "device",
            "device_serial",
            "status",
            "created_at",
            "rotated_at",
            "previous_valid_until",
            "revoked_at",
            "last_seen_at",
            "last_seen_ip",
            "ranges",
            "poll_interval_minutes",
            "upload_interval_minutes",
            "config_version",
        ]

    def get_device_serial(self, credential: Credential) -> str | None:
        return credential.device.serial if credential.device else None


class CredentialCreatedOut(serializers.Serializer):
    credential = CredentialOut()
    secret = serializers.CharField(help_text="Shown this once; store it in the collector.")
    url = serializers.CharField()


class CredentialIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Credential.Kind.choices)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    site = IdField(required=False, allow_null=True)
    serial = serializers.CharField(max_length=128, required=False, allow_blank=True)


class RotateIn(serializers.Serializer):
    grace_hours = serializers.IntegerField(required=False, min_value=0, max_value=720)


class CollectorConfigIn(serializers.Serializer):
    ranges = serializers.ListField(
        child=serializers.CharField(max_length=100),
        max_length=256,
        help_text="192.0.2.0/24, 192.0.2.10-192.0.2.50 or 192.0.2.99; at most 65,536 addresses"
        " each.",
    )
    communities = serializers.ListField(child=serializers.CharField(max_length=64), max_length=16)
    poll_interval_minutes = serializers.IntegerField(min_value=15, max_value=1440)
    upload_interval_minutes = serializers.IntegerField(min_value=1, max_value=1440)


class CollectorConfigOut(serializers.Serializer):
    config_version = serializers.IntegerField()
    ranges = serializers.ListField(child=serializers.CharField())
    communities = serializers.ListField(child=serializers.CharField())
    poll_interval_minutes = serializers.IntegerField()
    upload_interval_minutes = serializers.IntegerField()
    reorder_threshold_percent = serializers.IntegerField(
        min_value=0, max_value=100, help_text=REORDER_THRESHOLD_HELP
    )
    reorder_thresholds = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=100),
        help_text=REORDER_THRESHOLDS_HELP,
    )


def _created(credential: Credential, secret: str) -> dict[str, Any]:
    from django.conf import settings

    return {"credential": credential, "secret": secret, "url": settings.SITE_URL}


class CredentialListApi(APIView):
    # Documents the page wrapper and the page parameters in the OpenAPI schema too.
    pagination_class = Pagination

    required_roles: ClassVar[frozenset[str]] = ADMIN_ROLES

    @extend_schema(responses=CredentialOut(many=True), operation_id="credentials_list")
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.credential_list(ctx=request_ctx(request)), request, view=self
        )
        return paginator.get_paginated_response(CredentialOut(page, many=True).data)

    @extend_schema(request=CredentialIn, responses={201: CredentialCreatedOut})
    def post(self, request: Request) -> Response:
        data = CredentialIn(data=request.data)
        data.is_valid(raise_exception=True)
        credential, secret = services.credential_create(
            ctx=request_ctx(request),
            kind=data.validated_data["kind"],
            name=data.validated_data.get("name", ""),
            site_id=data.validated_data.get("site"),
            serial=data.validated_data.get("serial", ""),
        )
        body = CredentialCreatedOut(_created(credential, secret)).data
        return Response(body, status=status.HTTP_201_CREATED)


class CredentialDetailApi(APIView):
    required_roles: ClassVar[frozenset[str]] = ADMIN_ROLES

    @extend_schema(responses=CredentialOut)
    def get(self, request: Request, credential_id: int) -> Response:
        credential = selectors.credential_get(ctx=request_ctx(request), credential_id=credential_id)
        return Response(CredentialOut(credential).data)

    # 200 with the revoked credential: without the code, the schema would promise a bodiless 204.
    @extend_schema(
        request=None, responses={200: CredentialOut}, description="Revoke the credential."
    )
    def delete(self, request: Request, credential_id: int) -> Response:
        credential = services.credential_revoke(
            ctx=request_ctx(request), credential_id=credential_id
        )
        return Response(CredentialOut(credential).data)


class CredentialRotateApi(APIView):
    required_roles: ClassVar[frozenset[str]] = ADMIN_ROLES

    @extend_schema(request=RotateIn, responses=CredentialCreatedOut)
    def post(self, request: Request, credential_id: int) -> Response:
        ctx = request_ctx(request)
        # The credential first: another tenant's id is a 404 whatever the body says.
        credential = selectors.credential_get(ctx=ctx, credential_id=credential_id)
        data = RotateIn(data=request.data)
        data.is_valid(raise_exception=True)
        credential, secret = services.credential_rotate(
            ctx=ctx,
            credential_id=credential.pk,
            grace_hours=data.validated_data.get("grace_hours"),
        )
        return Response(CredentialCreatedOut(_created(credential, secret)).data)


class CollectorConfigApi(APIView):
    required_roles: ClassVar[frozenset[str]] = ADMIN_ROLES

    @extend_schema(
        responses={200: CollectorConfigOut, 400: error_response("Not a collector's credential.")}
    )
    def get(self, request: Request, credential_id: int) -> Response:
        credential = selectors.credential_get(ctx=request_ctx(request), credential_id=credential_id)
        if credential.kind != Credential.Kind.COLLECTOR:
            raise DomainError("Not a collector.", code="not_a_collector")
        return Response(services.collector_config(credential))

    @extend_schema(request=CollectorConfigIn, responses=CollectorConfigOut)
    def put(self, request: Request, credential_id: int) -> Response:
        ctx = request_ctx(request)
        # The credential first: another tenant's id is a 404 whatever the body says.
        credential = selectors.credential_get(ctx=ctx, credential_id=credential_id)
        data = CollectorConfigIn(data=request.data)
        data.is_valid(raise_exception=True)
        credential = services.collector_config_update(
            ctx=ctx, credential_id=credential.pk, **data.validated_data
        )
        return Response(services.collector_config(credential))


# --- Integration API: devices, supplies, counters, meter reads, alerts (read-only) -----------
# Lists that grow page by cursor (portal.api.KeysetPagination); every role may read them, each
# within its scope: a customer's token or user sees that customer's devices only.

UPDATED_SINCE_HELP = (
    "ISO 8601 date and time (`2026-05-01T00:00:00Z`; without an offset it is UTC): only rows "
    "changed at or after it. Sync by keeping the time you started your last full walk."
)


class _Query(serializers.Serializer[Any]):
    """Query parameters; a bad one is a 400 naming it."""

    @classmethod
    def parse(cls, request: Request) -> dict[str, Any]:
        query = cls(data=request.query_params)
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)


class DeviceQuery(_Query):
    customer = IdField(required=False, help_text="Only this customer's devices.")
    site = IdField(required=False, help_text="Only the devices at this site.")
    status = serializers.ChoiceField(
        choices=DeviceStatus.choices, required=False, help_text="As the fleet list shows it."
    )
    lifecycle = serializers.ChoiceField(
        choices=Lifecycle.choices,
        default=Lifecycle.ALL,
        help_text="In service (`active`), `retired`, or both (`all`, the default).",
    )
    updated_since = serializers.DateTimeField(
        required=False,
        help_text=UPDATED_SINCE_HELP + " A device changes when it is renamed, moved, retired "
        "or returned to service, reports, or goes offline.",
    )


class SupplyQuery(_Query):
    device = IdField(required=False, help_text="Only this device's supplies.")
    customer = IdField(required=False, help_text="Only the supplies of this customer's devices.")
    below = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=100,
        help_text="Only supplies whose level is known and below this percentage.",
    )
    updated_since = serializers.DateTimeField(
        required=False,
        help_text=UPDATED_SINCE_HELP + " A supply changes when its device reports it "
        "(`observed_at`).",
    )


class AlertQuery(_Query):
    state = serializers.ChoiceField(
        choices=[("open", "open"), ("closed", "closed")],
        required=False,
        help_text="`open`: not cleared yet (snoozed ones too); `closed`: cleared. Both unless "
        "given.",
    )
    device = IdField(required=False, help_text="Only this device's alerts.")
    code = serializers.CharField(
        required=False, max_length=128, help_text="The kind of alert, e.g. `device.offline`."
    )
    severity = serializers.ChoiceField(choices=Alert.Severity.choices, required=False)
    updated_since = serializers.DateTimeField(
        required=False,
        help_text=UPDATED_SINCE_HELP + " An alert changes when it is raised, reported again, "
        "cleared or acknowledged.",
    )


class MeterReadQuery(_Query):
    device = IdField(required=False, help_text="Only this device's reads.")
    since = serializers.DateTimeField(
        required=False,
        help_text="ISO 8601 date and time: only reads the device took at or after it "
        "(`collected_at`). Reads are never changed once stored.",
    )


class DeviceOut(serializers.ModelSerializer[Device]):
    status = serializers.ChoiceField(choices=DeviceStatus.choices)
    last_seen_at = serializers.DateTimeField(source="state.last_seen_at", allow_null=True)
    is_online = serializers.BooleanField(source="state.is_online", allow_null=True)
    offline_since = serializers.DateTimeField(source="state.offline_since", allow_null=True)
    state = serializers.CharField(
        source="state.state", allow_null=True, help_text="As the printer reported it."
    )
    state_detail = serializers.CharField(source="state.detail", allow_null=True)
    firmware = serializers.CharField(source="state.firmware", allow_null=True)
    ip = serializers.CharField(source="state.ip", allow_null=True)
    hostname = serializers.CharField(source="state.hostname", allow_null=True)
    mac = serializers.CharField(source="state.mac", allow_null=True)
    lowest_supply_percent = serializers.FloatField(
        source="state.lowest_supply_percent", allow_null=True
    )
    open_alerts = serializers.IntegerField(help_text="Open alerts that are not snoozed.")

    class Meta:
        model = Device
        fields = [
            "id",
            "serial",
            "name",
            "manufacturer",
            "model",
            "product_number",
            "customer",
            "site",
            "status",
            "state",
            "state_detail",
            "last_seen_at",
            "is_online",
            "offline_since",
            "firmware",
            "ip",
            "hostname",
            "mac",
            "lowest_supply_percent",
            "open_alerts",
            "created_at",
            "updated_at",
            "retired_at",
        ]


class SupplyOut(serializers.ModelSerializer[Supply]):
    device_serial = serializers.CharField(source="device.serial")
    customer = serializers.IntegerField(source="device.customer_id")
    # A plain string: the printer reports it; the level_state enum names the known ones.
    level_state = serializers.CharField()

    class Meta:
        model = Supply
        fields = [
            "id",
            "device",
            "device_serial",
            "customer",
            "supply_key",
            "kind",
            "color",
            "color_family",
            "description",
            "part_number",
            "serial",
            "manufacturer",
            "is_genuine",
            "unit",
            "max_capacity",
            "level",
            "level_state",
            "percent",
            "status",
            "expires_on",
            "observed_at",
        ]


class CounterOut(serializers.Serializer[Any]):
    name = serializers.CharField(help_text="e.g. `impressions.total`, `impressions.color`.")
    media_type = serializers.CharField(help_text='"" when the device does not say.')
    color = serializers.CharField(help_text='"" when the device does not say.')
    unit = serializers.CharField()
    value = serializers.DecimalField(max_digits=20, decimal_places=4)


class CurrentCounterOut(CounterOut):
    collected_at = serializers.DateTimeField(help_text="When the device took this value.")


class DeviceDetailOut(DeviceOut):
    supplies = serializers.SerializerMethodField()
    counters = serializers.SerializerMethodField()

    class Meta(DeviceOut.Meta):
        fields = [*DeviceOut.Meta.fields, "supplies", "counters"]

    @extend_schema_field(SupplyOut(many=True))
    def get_supplies(self, device: Device) -> list[dict[str, Any]]:
        return list(SupplyOut(device.supplies.all(), many=True).data)

    @extend_schema_field(CurrentCounterOut(many=True))
    def get_counters(self, device: Device) -> list[dict[str, Any]]:
        return list(CurrentCounterOut(self.context["counters"], many=True).data)


class AlertOut(serializers.ModelSerializer[Alert]):
    device_serial = serializers.CharField(source="device.serial")
    customer = serializers.IntegerField(source="device.customer_id")
    is_open = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id",
            "device",
            "device_serial",
            "customer",
            "code",
            "severity",
            "description",
            "is_open",
            "first_seen_at",
            "last_seen_at",
            "cleared_at",
            "acknowledged_at",
            "snoozed_until",
        ]

    def get_is_open(self, alert: Alert) -> bool:
        return alert.cleared_at is None


class MeterReadOut(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    device = serializers.IntegerField(source="device_id")
    device_serial = serializers.CharField(source="device.serial")
    collected_at = serializers.DateTimeField(help_text="When the device took the read.")
    # Declared once for the whole page: a serializer built per read costs a millisecond each.
    counters = CounterOut(many=True, source="counter_list")


class DeviceListApi(APIView):
    pagination_class = KeysetPagination

    @extend_schema(
        operation_id="devices_list",
        parameters=[DeviceQuery],
        responses=DeviceOut(many=True),
        description="The devices the token's tenant may see, by id. Page with the `next` link.",
    )
    def get(self, request: Request) -> Response:
        ctx = request_ctx(request)
        q = DeviceQuery.parse(request)
        rows = selectors.device_sync_list(
            ctx=ctx,
            f=selectors.DeviceSyncFilter(
                customer_id=q.get("customer"),
                site_id=q.get("site"),
                status=q.get("status", ""),
                lifecycle=q["lifecycle"],
                updated_since=q.get("updated_since"),
            ),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_keyset(rows, request, load=selectors.device_sync_load(ctx=ctx))
        return paginator.get_paginated_response(DeviceOut(page, many=True).data)


def _device_counters(request: Request, device_id: int) -> list[fleet_selectors.CounterValue]:
    return fleet_selectors.device_counter_list(ctx=request_ctx(request), device_id=device_id)


class DeviceDetailApi(APIView):
    @extend_schema(
        responses=DeviceDetailOut,
        description="One device with its supplies and the latest value of each counter.",
    )
    def get(self, request: Request, device_id: int) -> Response:
        device = fleet_selectors.device_get(ctx=request_ctx(request), device_id=device_id)
        context = {"counters": _device_counters(request, device.pk)}
        return Response(DeviceDetailOut(device, context=context).data)


class DeviceCounterListApi(APIView):
    @extend_schema(
        operation_id="devices_counters_list",
        responses=CurrentCounterOut(many=True),
        description="The latest value of each of the device's counters (name plus media type "
        "and colour), with the time the device took it.",
    )
    def get(self, request: Request, device_id: int) -> Response:
        device = fleet_selectors.device_get(ctx=request_ctx(request), device_id=device_id)
        return Response(CurrentCounterOut(_device_counters(request, device.pk), many=True).data)


class SupplyListApi(APIView):
    pagination_class = KeysetPagination

    @extend_schema(
        operation_id="supplies_list",
        parameters=[SupplyQuery],
        responses=SupplyOut(many=True),
        description="Current state of the supplies of the devices in service, by id.",
    )
    def get(self, request: Request) -> Response:
        q = SupplyQuery.parse(request)
        rows = selectors.supply_sync_list(
            ctx=request_ctx(request),
            device_id=q.get("device"),
            customer_id=q.get("customer"),
            below_percent=q.get("below"),
            updated_since=q.get("updated_since"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_keyset(rows, request)
        return paginator.get_paginated_response(SupplyOut(page, many=True).data)


class AlertListApi(APIView):
    pagination_class = KeysetPagination

    @extend_schema(
        operation_id="alerts_list",
        parameters=[AlertQuery],
        responses=AlertOut(many=True),
        description="Alert episodes of the devices, open and cleared, by id.",
    )
    def get(self, request: Request) -> Response:
        q = AlertQuery.parse(request)
        state = q.get("state")
        rows = selectors.alert_sync_list(
            ctx=request_ctx(request),
            is_open=None if state is None else state == "open",
            device_id=q.get("device"),
            code=q.get("code", ""),
            severity=q.get("severity", ""),
            updated_since=q.get("updated_since"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_keyset(rows, request)
        return paginator.get_paginated_response(AlertOut(page, many=True).data)


class MeterReadListApi(APIView):
    pagination_class = KeysetPagination

    @extend_schema(
        operation_id="meter_reads_list",
        parameters=[MeterReadQuery],
        responses=MeterReadOut(many=True),
        description="Meter-read history, across the fleet or of one device: each read is the "
        "counters a device reported at `collected_at`, oldest first by (`collected_at`, `id`). "
        "A read that arrives late (a collector that was offline sends its backlog) takes its "
        "place by `collected_at`; to catch those, start the next sync a little before the "
        "last `collected_at` you hold and skip the ids you have.",
    )
    def get(self, request: Request) -> Response:
        ctx = request_ctx(request)
        q = MeterReadQuery.parse(request)
        rows = selectors.meter_read_list(ctx=ctx, device_id=q.get("device"), since=q.get("since"))
        paginator = self.pagination_class()
        page = paginator.paginate_keyset(rows, request, keys=selectors.METER_READ_KEYS)
        counters = selectors.meter_read_counters(ctx=ctx, reads=page)
        for read in page:
            read.counter_list = counters.get((read.device_id, read.collected_at), [])
        return paginator.get_paginated_response(MeterReadOut(page, many=True).data)
