"""REST API of orders and the catalog. Thin: parse with a Serializer, call a service or
selector; refusals come back in the one error format of portal.api."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import selectors, services
from orders.models import Order, OrderEvent, OrderLine, Product
from portal.api import IdField, Pagination, request_ctx


class ProductOut(serializers.ModelSerializer[Product]):
    # Plain strings: the OpenAPI schema already has a "kind" enum (credentials).
    kind = serializers.CharField()
    yield_unit = serializers.CharField()

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "part_number",
            "name",
            "kind",
            "color",
            "rated_yield",
            "yield_unit",
            "compatible_models",
            "price",
            "currency",
            "is_active",
        ]


class OrderLineOut(serializers.ModelSerializer[OrderLine]):
    sku = serializers.CharField(source="product.sku")

    class Meta:
        model = OrderLine
        fields = ["id", "product", "sku", "supply", "quantity", "unit_price", "line_total"]


class OrderEventOut(serializers.ModelSerializer[OrderEvent]):
    class Meta:
        model = OrderEvent
        fields = ["from_status", "to_status", "by_label", "at", "note"]


class OrderOut(serializers.ModelSerializer[Order]):
    number = serializers.CharField()

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "customer",
            "site",
            "status",
            "source",
            "currency",
            "note",
            "carrier",
            "tracking_number",
            "created_at",
            "updated_at",
        ]


class OrderDetailOut(OrderOut):
    lines = serializers.SerializerMethodField()
    events = serializers.SerializerMethodField()

    class Meta(OrderOut.Meta):
        fields = [*OrderOut.Meta.fields, "lines", "events"]

    def get_lines(self, order: Order) -> list[dict[str, Any]]:
        return list(OrderLineOut(self.context["lines"], many=True).data)

    def get_events(self, order: Order) -> list[dict[str, Any]]:
        return list(OrderEventOut(self.context["events"], many=True).data)


class LineIn(serializers.Serializer[Any]):
    product = IdField()
    quantity = serializers.IntegerField(min_value=1, max_value=999, default=1)
    supply = IdField(required=False, allow_null=True, default=None)


class OrderIn(serializers.Serializer[Any]):
    site = IdField()
    lines = LineIn(many=True)
    note = serializers.CharField(required=False, allow_blank=True, default="")
    submit = serializers.BooleanField(default=False)


class TransitionIn(serializers.Serializer[Any]):
    # A string, not a second enum of the order statuses; order_transition names bad ones.
    to = serializers.CharField(max_length=32)
    note = serializers.CharField(required=False, allow_blank=True, default="")
    carrier = serializers.CharField(required=False, allow_blank=True, default="")
    tracking_number = serializers.CharField(required=False, allow_blank=True, default="")


def _detail(request: Request, order: Order) -> dict[str, Any]:
    ctx = request_ctx(request)
    context = {
        "lines": selectors.order_line_list(ctx=ctx, order_id=order.pk),
        "events": selectors.order_event_list(ctx=ctx, order_id=order.pk),
    }
    return dict(OrderDetailOut(order, context=context).data)


class OrderQuery(serializers.Serializer[Any]):
    # A string, as before: an unknown status is ignored rather than refused.
    status = serializers.CharField(
        required=False, allow_blank=True, help_text="Only orders in this status."
    )
    updated_since = serializers.DateTimeField(
        required=False,
        help_text="ISO 8601 date and time (without an offset it is UTC): only orders created "
        "or changed (status, shipment) at or after it.",
    )


class OrderListApi(APIView):
    # Documents the page wrapper and the page parameters in the OpenAPI schema too.
    pagination_class = Pagination

    @extend_schema(
        responses=OrderOut(many=True),
        operation_id="orders_list",
        parameters=[OrderQuery],
        description="Orders newest first, by page number (`page`); `updated_since` for a sync.",
    )
    def get(self, request: Request) -> Response:
        query = OrderQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        status_filter = query.validated_data.get("status", "")
        f = selectors.OrderFilter(
            status=status_filter if status_filter in Order.Status.values else "",
            updated_since=query.validated_data.get("updated_since"),
        )
        paginator = self.pagination_class()
        # A Listing pages like a queryset (count and slices); DRF's types know only those.
        orders: Any = selectors.order_list(ctx=request_ctx(request), f=f)
        page: Any = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(OrderOut(page, many=True).data)

    @extend_schema(request=OrderIn, responses={201: OrderDetailOut})
    def post(self, request: Request) -> Response:
        data = OrderIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        order = services.order_create(
            ctx=request_ctx(request),
            site_id=v["site"],
            lines=[
                services.LineIn(
                    product_id=line["product"], quantity=line["quantity"], supply_id=line["supply"]
                )
                for line in v["lines"]
            ],
            note=v["note"],
            submit=v["submit"],
        )
        return Response(_detail(request, order), status=status.HTTP_201_CREATED)


class OrderDetailApi(APIView):
    @extend_schema(responses=OrderDetailOut)
    def get(self, request: Request, order_id: int) -> Response:
        order = selectors.order_get(ctx=request_ctx(request), order_id=order_id)
        return Response(_detail(request, order))


class OrderTransitionApi(APIView):
    @extend_schema(request=TransitionIn, responses=OrderDetailOut)
    def post(self, request: Request, order_id: int) -> Response:
        ctx = request_ctx(request)
        # Another tenant's order is not found before its body is even read.
        order = selectors.order_get(ctx=ctx, order_id=order_id)
        data = TransitionIn(data=request.data)
        data.is_valid(raise_exception=True)
        order = services.order_transition(ctx=ctx, order_id=order.pk, **data.validated_data)
        return Response(_detail(request, order))


class ProductListApi(APIView):
    # Documents the page wrapper and the page parameters in the OpenAPI schema too.
    pagination_class = Pagination

    @extend_schema(responses=ProductOut(many=True), operation_id="products_list")
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        qs = selectors.product_list(ctx=request_ctx(request), search=request.GET.get("q", ""))
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ProductOut(page, many=True).data)
