from django.contrib import admin

from integrations.models import WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "reseller", "is_active", "created_at"]
    list_filter = ["is_active"]
    exclude = ["secret"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event", "endpoint", "status", "attempts", "response_code", "created_at"]
    list_filter = ["status", "event"]
    raw_id_fields = ["endpoint"]
