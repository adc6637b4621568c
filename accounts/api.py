"""REST API of customers and sites. Thin: parse with a Serializer, call a service or selector."""

from __future__ import annotations

from typing import ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.models import Customer, Site
from portal.api import Pagination, request_ctx
from portal.tenancy import ADMIN_ROLES, Role


class CustomerOut(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id",
            "name",
            "account_number",
            "billing_email",
            "billing_address",
            "notes",
            "created_at",
        ]


class CustomerIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    account_number = serializers.CharField(max_length=64, required=False, allow_blank=True)
    billing_email = serializers.EmailField(required=False, allow_blank=True)
    billing_address = serializers.CharField(required=False, allow_blank=True)
    notes = serializers.CharField(required=False, allow_blank=True)


class SiteOut(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = [
            "id",
            "customer",
            "name",
            "address_line1",
            "address_line2",
            "postal_code",
            "city",
            "country",
            "contact_name",
            "contact_email",
            "contact_phone",
            "created_at",
        ]


class SiteIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    address_line1 = serializers.CharField(max_length=255, required=False, allow_blank=True)
    address_line2 = serializers.CharField(max_length=255, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=32, required=False, allow_blank=True)
    city = serializers.CharField(max_length=128, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2, required=False, allow_blank=True)
    contact_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    contact_email = serializers.EmailField(required=False, allow_blank=True)
    contact_phone = serializers.CharField(max_length=64, required=False, allow_blank=True)


def _write_roles(request: Request) -> bool:
    return request.method in ("GET", "HEAD", "OPTIONS") or request_ctx(request).role in ADMIN_ROLES


class _AdminWrites(APIView):
    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)
        if not _write_roles(request):
            self.permission_denied(request, message="Only a reseller admin may change this.")


class CustomerListApi(_AdminWrites):
    # Documents the page wrapper and the page parameters in the OpenAPI schema too.
    pagination_class = Pagination

    @extend_schema(responses=CustomerOut(many=True), operation_id="customers_list")
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        qs = selectors.customer_list(ctx=request_ctx(request), search=request.GET.get("q", ""))
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(CustomerOut(page, many=True).data)

    @extend_schema(request=CustomerIn, responses={201: CustomerOut})
    def post(self, request: Request) -> Response:
        data = CustomerIn(data=request.data)
        data.is_valid(raise_exception=True)
        customer = services.customer_create(ctx=request_ctx(request), **data.validated_data)
        return Response(CustomerOut(customer).data, status=status.HTTP_201_CREATED)


class CustomerDetailApi(_AdminWrites):
    @extend_schema(responses=CustomerOut)
    def get(self, request: Request, customer_id: int) -> Response:
        customer = selectors.customer_get(ctx=request_ctx(request), customer_id=customer_id)
        return Response(CustomerOut(customer).data)

    @extend_schema(request=CustomerIn(partial=True), responses=CustomerOut)
    def patch(self, request: Request, customer_id: int) -> Response:
        ctx = request_ctx(request)
        # The customer first: another tenant's id is a 404 whatever the body says.
        customer = selectors.customer_get(ctx=ctx, customer_id=customer_id)
        data = CustomerIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        customer = services.customer_update(ctx=ctx, customer_id=customer.pk, **data.validated_data)
        return Response(CustomerOut(customer).data)


class CustomerSiteListApi(_AdminWrites):
    # Documents the page wrapper and the page parameters in the OpenAPI schema too.
    pagination_class = Pagination

    @extend_schema(responses=SiteOut(many=True), operation_id="customer_sites_list")
    def get(self, request: Request, customer_id: int) -> Response:
        ctx = request_ctx(request)
        customer = selectors.customer_get(ctx=ctx, customer_id=customer_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.site_list(ctx=ctx, customer_id=customer.pk), request, view=self
        )
        return paginator.get_paginated_response(SiteOut(page, many=True).data)

    @extend_schema(request=SiteIn, responses={201: SiteOut})
    def post(self, request: Request, customer_id: int) -> Response:
        ctx = request_ctx(request)
        customer = selectors.customer_get(ctx=ctx, customer_id=customer_id)
        data = SiteIn(data=request.data)
        data.is_valid(raise_exception=True)
        site = services.site_create(ctx=ctx, customer_id=customer.pk, **data.validated_data)
        return Response(SiteOut(site).data, status=status.HTTP_201_CREATED)


class SiteDetailApi(_AdminWrites):
    @extend_schema(responses=SiteOut)
    def get(self, request: Request, site_id: int) -> Response:
        return Response(SiteOut(selectors.site_get(ctx=request_ctx(request), site_id=site_id)).data)

    @extend_schema(request=SiteIn(partial=True), responses=SiteOut)
    def patch(self, request: Request, site_id: int) -> Response:
        ctx = request_ctx(request)
        # The site first: another tenant's id is a 404 whatever the body says.
        site = selectors.site_get(ctx=ctx, site_id=site_id)
        data = SiteIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        site = services.site_update(ctx=ctx, site_id=site.pk, **data.validated_data)
        return Response(SiteOut(site).data)


class MeOut(serializers.Serializer):
    email = serializers.EmailField()
    reseller = serializers.CharField()
    customer = serializers.CharField(allow_null=True)
    role = serializers.ChoiceField(choices=Role.choices)


class MeApi(APIView):
    required_roles: ClassVar[None] = None

    @extend_schema(responses=MeOut)
    def get(self, request: Request) -> Response:
        ctx = request_ctx(request)
        return Response(
            MeOut(
                {
                    "email": ctx.user.email if ctx.user else "",
                    "reseller": ctx.reseller.slug,
                    "customer": ctx.customer.name if ctx.customer else None,
                    "role": ctx.role,
                }
            ).data
        )
