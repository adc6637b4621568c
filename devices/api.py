"""REST API of device credentials and collector configuration, for reseller admins. Thin.

The telemetry endpoint itself is not here: it is the plain view devices.ingest.telemetry."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devices import selectors, services
from devices.models import Credential
from devices.openapi import REORDER_THRESHOLD_HELP, REORDER_THRESHOLDS_HELP
from portal.api import IdField, Pagination, request_ctx
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
