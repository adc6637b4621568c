from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from billing.models import Contract, PricePlan, Statement


@admin.register(PricePlan)
class PricePlanAdmin(admin.ModelAdmin):
    list_display = ["name", "currency", "reseller", "created_at"]
    search_fields = ["name"]


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = ["reference", "customer", "plan", "starts_on", "ends_on", "reseller"]
    search_fields = ["reference", "purchase_order"]
    raw_id_fields = ["customer", "plan"]


@admin.register(Statement)
class StatementAdmin(admin.ModelAdmin):
    """Read-only: statements change only through the billing services (final is final)."""

    list_display = ["contract", "period_start", "kind", "status", "number", "total", "reseller"]
    list_filter = ["status", "kind"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
