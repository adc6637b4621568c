"""Operator views of the orders data: read-mostly; orders change only through the services."""

from django.contrib import admin

from orders.models import EmailLog, Order, OrderEvent, Product, SupplyAlert


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "part_number", "price", "currency", "is_active", "reseller"]
    search_fields = ["sku", "name", "part_number"]
    list_filter = ["is_active", "kind"]


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "by_label", "at", "note"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "reseller", "customer", "status", "created_at"]
    list_filter = ["status"]
    # Status changes go through order_transition (events, emails); the admin only reads.
    readonly_fields = ["status", "carrier", "tracking_number"]
    inlines = [OrderEventInline]


@admin.register(SupplyAlert)
class SupplyAlertAdmin(admin.ModelAdmin):
    list_display = ["id", "reseller", "supply", "status", "reason", "created_at", "sent_at"]
    list_filter = ["status", "reason"]


@admin.register(EmailLog)
class EmailLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "recipient", "subject", "kind", "status"]
    list_filter = ["kind", "status"]
    search_fields = ["recipient", "subject"]
