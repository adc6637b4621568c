"""REST API of statements and usage exports, for finance tools and the ERP. Thin."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import exports, pdf_services, selectors, statement_services
from billing.models import (
    Contract,
    ContractDevice,
    PlanRate,
    PlanTier,
    PlanVersion,
    PricePlan,
    Statement,
    StatementLine,
    StatementPdf,
)
from billing.pricing import validate_period_day
from portal.api import Pagination, request_ctx
from portal.errors import DomainError
from portal.tenancy import ADMIN_ROLES, CUSTOMER_ROLES, Role

FINANCE = frozenset({*ADMIN_ROLES, Role.RESELLER_FINANCE})
READERS = FINANCE | CUSTOMER_ROLES


class StatementOut(serializers.ModelSerializer):
    # Plain strings: the choices are documented on the model, and one "kind" enum per app
    # would collide in the OpenAPI components.
    kind = serializers.CharField()
    status = serializers.CharField()
    customer_name = serializers.CharField(source="customer.name")
    contract_reference = serializers.CharField(source="contract.reference")
    purchase_order = serializers.CharField(source="contract.purchase_order")
    plan_version = serializers.IntegerField(source="plan_version_id")
    adjusts = serializers.IntegerField(source="adjusts_id", allow_null=True)

    class Meta:
        model = Statement
        fields = [
            "id",
            "number",
            "kind",
            "status",
            "adjusts",
            "customer",
            "customer_name",
            "contract",
            "contract_reference",
            "purchase_order",
            "plan_version",
            "period_start",
            "period_end",
            "currency",
            "subtotal",
            "tax_rate",
            "tax",
            "total",
            "flag_count",
            "computed_at",
            "finalised_at",
        ]


class StatementLineOut(serializers.ModelSerializer):
    kind = serializers.CharField()
    device_serial = serializers.CharField(source="device.serial", allow_null=True, default=None)

    class Meta:
        model = StatementLine
        fields = [
            "position",
            "kind",
            "device",
            "device_serial",
            "counter",
            "media_type",
            "color",
            "window_start",
            "window_end",
            "start_at",
            "start_value",
            "end_at",
            "end_value",
            "measured",
            "usage",
            "allowance",
            "billable",
            "unit_price",
            "rate_label",
            "amount",
            "flags",
        ]


class StatementDetailOut(StatementOut):
    lines = serializers.SerializerMethodField()

    class Meta(StatementOut.Meta):
        fields = [*StatementOut.Meta.fields, "lines"]

    def get_lines(self, statement: Statement) -> list[Any]:
        return list(StatementLineOut(self.context["lines"], many=True).data)


class PlanTierOut(serializers.ModelSerializer):
    class Meta:
        model = PlanTier
        fields = ["from_units", "to_units", "unit_price"]


class PlanRateOut(serializers.ModelSerializer):
    mode = serializers.CharField()
    scope = serializers.CharField()
    tiers = PlanTierOut(many=True)

    class Meta:
        model = PlanRate
        fields = ["counter", "media_type", "color", "mode", "scope", "included_units", "tiers"]


class PlanVersionOut(serializers.ModelSerializer):
    rates = PlanRateOut(many=True)

    class Meta:
        model = PlanVersion
        fields = [
            "number",
            "effective_from",
            "monthly_fee_per_device",
            "minimum_monthly",
            "tax_rate",
            "rates",
        ]


class PlanOut(serializers.ModelSerializer):
    versions = PlanVersionOut(many=True)

    class Meta:
        model = PricePlan
        fields = ["id", "name", "currency", "description", "versions"]


class ContractDeviceOut(serializers.ModelSerializer):
    serial = serializers.CharField(source="device.serial")

    class Meta:
        model = ContractDevice
        fields = ["device", "serial", "joined_on", "left_on"]


class ContractOut(serializers.ModelSerializer):
    missing_data = serializers.CharField()
    devices = serializers.SerializerMethodField()

    class Meta:
        model = Contract
        fields = [
            "id",
            "reference",
            "customer",
            "plan",
            "purchase_order",
            "anchor_day",
            "starts_on",
            "ends_on",
            "missing_data",
            "devices",
        ]

    @extend_schema_field(ContractDeviceOut(many=True))
    def get_devices(self, contract: Contract) -> list[Any]:
        return list(ContractDeviceOut(self.context["memberships"], many=True).data)


class ComputeIn(serializers.Serializer):
    period_start = serializers.DateField(
        help_text="Any day of the period to compute, in the years 2000 to 2100.",
        validators=[validate_period_day],
    )


def _month(request: Request) -> date:
    value = request.query_params.get("month", "")
    try:
        return date.fromisoformat(f"{value}-01")
    except ValueError as exc:
        raise DomainError(
            "Give the month as YYYY-MM.", code="invalid_month", fields={"month": ["YYYY-MM"]}
        ) from exc


MONTH = OpenApiParameter("month", str, description="YYYY-MM: statements whose period starts then")
STATUS = OpenApiParameter("status", str, enum=Statement.Status.values)


class PlanDetailApi(APIView):
    required_roles: ClassVar[frozenset[Role]] = FINANCE

    @extend_schema(responses=PlanOut)
    def get(self, request: Request, plan_id: int) -> Response:
        return Response(PlanOut(selectors.plan_get(ctx=request_ctx(request), plan_id=plan_id)).data)


class ContractDetailApi(APIView):
    required_roles: ClassVar[frozenset[Role]] = FINANCE

    @extend_schema(responses=ContractOut)
    def get(self, request: Request, contract_id: int) -> Response:
        ctx = request_ctx(request)
        contract = selectors.contract_get(ctx=ctx, contract_id=contract_id)
        memberships = selectors.contract_device_list(ctx=ctx, contract_id=contract.pk)
        return Response(ContractOut(contract, context={"memberships": memberships}).data)


class StatementListApi(APIView):
    # Documents the page wrapper and the page parameters in the OpenAPI schema too.
    pagination_class = Pagination

    required_roles: ClassVar[frozenset[Role]] = READERS

    @extend_schema(responses=StatementOut(many=True), parameters=[MONTH, STATUS])
    def get(self, request: Request) -> Response:
        status_ = request.query_params.get("status", "")
        f = selectors.StatementFilter(
            month=_month(request) if request.query_params.get("month") else None,
            status=status_ if status_ in Statement.Status.values else "",
        )
        paginator = self.pagination_class()
        qs = selectors.statement_list(ctx=request_ctx(request), f=f)
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(StatementOut(page, many=True).data)


class StatementDetailApi(APIView):
    required_roles: ClassVar[frozenset[Role]] = READERS

    @extend_schema(responses=StatementDetailOut)
    def get(self, request: Request, statement_id: int) -> Response:
        ctx = request_ctx(request)
        statement = selectors.statement_get(ctx=ctx, statement_id=statement_id)
        lines = selectors.statement_lines(ctx=ctx, statement=statement)
        return Response(StatementDetailOut(statement, context={"lines": lines}).data)


class StatementFinaliseApi(APIView):
    required_roles: ClassVar[frozenset[Role]] = FINANCE

    @extend_schema(request=None, responses=StatementOut)
    def post(self, request: Request, statement_id: int) -> Response:
        statement = statement_services.statement_finalise(
            ctx=request_ctx(request), statement_id=statement_id, by=request_ctx(request).user
        )
        return Response(StatementOut(statement).data)


class StatementComputeApi(APIView):
    required_roles: ClassVar[frozenset[Role]] = FINANCE

    @extend_schema(request=ComputeIn, responses={201: StatementOut})
    def post(self, request: Request, contract_id: int) -> Response:
        ctx = request_ctx(request)
        # The contract first: another tenant's id is a 404 whatever the body says.
        contract = selectors.contract_get(ctx=ctx, contract_id=contract_id)
        data = ComputeIn(data=request.data)
        data.is_valid(raise_exception=True)
        statement = statement_services.statement_compute(
            ctx=ctx,
            contract_id=contract.pk,
            period_start=data.validated_data["period_start"],
        )
        return Response(StatementOut(statement).data, status=status.HTTP_201_CREATED)


class StatementCsvApi(APIView):
    required_roles: ClassVar[frozenset[Role]] = READERS

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)})
    def get(self, request: Request, statement_id: int) -> StreamingHttpResponse:
        ctx = request_ctx(request)
        statement = selectors.statement_get(ctx=ctx, statement_id=statement_id)
        lines = selectors.statement_lines(ctx=ctx, statement=statement)
        rows = exports.statement_csv_rows(statement, lines)
        return StreamingHttpResponse(
            exports.csv_lines(exports.STATEMENT_COLUMNS, rows), content_type="text/csv"
        )


class StatementPdfStateOut(serializers.ModelSerializer[StatementPdf]):
    class Meta:
        model = StatementPdf
        fields = ("status", "requested_at", "error")


class StatementPdfApi(APIView):
    required_roles: ClassVar[frozenset[Role]] = READERS

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY),
            202: OpenApiResponse(
                StatementPdfStateOut,
                description="A big statement's PDF is being prepared: ask again after "
                "Retry-After seconds.",
            ),
        }
    )
    def get(self, request: Request, statement_id: int) -> HttpResponse:
        ctx = request_ctx(request)
        statement = selectors.statement_get(ctx=ctx, statement_id=statement_id)
        context = pdf_services.statement_pdf_context(ctx=ctx, statement=statement)
        if pdf_services.statement_pdf_is_inline(context["lines"]):
            pdf = pdf_services.statement_pdf_render_now(context)
            return HttpResponse(pdf, content_type="application/pdf")
        document = pdf_services.statement_pdf_request(ctx=ctx, statement=statement)
        if document.status == StatementPdf.Status.READY:
            return HttpResponse(
                pdf_services.statement_pdf_content(document), content_type="application/pdf"
            )
        response = Response(StatementPdfStateOut(document).data, status=202)
        response["Retry-After"] = "5"
        return response


class UsageExportApi(APIView):
    required_roles: ClassVar[frozenset[Role]] = FINANCE

    @extend_schema(
        parameters=[MONTH, STATUS],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        status_ = request.query_params.get("status", Statement.Status.FINAL)
        f = selectors.UsageExportFilter(
            month=_month(request),
            status=status_ if status_ in Statement.Status.values else Statement.Status.FINAL,
        )
        rows = selectors.usage_export_rows(ctx=request_ctx(request), f=f)
        return StreamingHttpResponse(exports.usage_csv(rows), content_type="text/csv")
