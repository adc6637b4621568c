"""The Django admin: for platform operators only, behind the second factor like every other
door (accounts/middleware.py), and audited like entering a reseller: every admin page that
shows or changes a reseller's rows leaves a row in that reseller's audit log.

The admin spans resellers by design, so its views run with every tenant in scope (PostgreSQL's
row-level security would otherwise show it nothing); the audit is what keeps that visible.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.db.models.base import ModelBase
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.middleware import second_factor_given
from portal import ratelimit, rls


class AdminSite(admin.AdminSite):
    site_header = "Inkmeter operator admin"
    site_title = "Inkmeter admin"

    def has_permission(self, request: HttpRequest) -> bool:
        user: Any = request.user
        return bool(user.is_active and user.is_superuser and second_factor_given(request))

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        """Never Django's own form, which signs in with the password alone: allauth's login,
        which asks for the second factor, or (signed in already) the code alone."""
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
        user: Any = request.user
        if not user.is_authenticated:
            return redirect_to_login(next_url, login_url=reverse("account_login"))
        if not user.is_superuser:
            raise PermissionDenied("The admin is for platform operators.")
        query = urlencode({"next": next_url}, safe="/")
        return redirect(f"{reverse('mfa_reauthenticate')}?{query}")

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        inner = super().admin_view(view, cacheable)

        @functools.wraps(inner)
        def in_scope(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user: Any = request.user
            if user.is_authenticated and not user.is_superuser:
                raise PermissionDenied("The admin is for platform operators.")
            if self.has_permission(request):
                rls.activate_system("the operator's admin spans resellers; each page is audited")
            response: HttpResponse = inner(request, *args, **kwargs)
            return response

        return in_scope

    def register(
        self,
        model_or_iterable: ModelBase | Iterable[ModelBase],
        admin_class: type[admin.ModelAdmin[Any]] | None = None,
        **options: Any,
    ) -> None:
        """Every tenant model's admin is audited, whichever app registers it."""
        models = (
            [model_or_iterable] if isinstance(model_or_iterable, ModelBase) else model_or_iterable
        )
        for model in models:
            cls = admin_class or admin.ModelAdmin
            if is_tenant_data(model) and not issubclass(cls, TenantAuditedAdmin):
                cls = type(f"Audited{cls.__name__}", (TenantAuditedAdmin, cls), {})
            super().register(model, cls, **options)


def is_tenant_data(model: Any) -> bool:
    from accounts.models import Reseller
    from portal.tenancy import TenantModel

    return issubclass(model, TenantModel | Reseller)


def _reseller_id(obj: Model) -> int:
    from accounts.models import Reseller

    return obj.pk if isinstance(obj, Reseller) else obj.reseller_id  # type: ignore[attr-defined]


class TenantAuditedAdmin(admin.ModelAdmin):
    """Writes an audit row, in each reseller whose rows a page shows or changes."""

    def _audit(
        self, request: HttpRequest, action: str, objects: Iterable[Model], **detail: Any
    ) -> None:
        from accounts import services

        user: Any = request.user  # an operator: only they pass has_permission
        services.admin_access_record(
            user=user,
            action=action,
            model=self.model,
            reseller_ids={_reseller_id(obj) for obj in objects},
            detail={"method": request.method, **detail},
            path=request.get_full_path(),
            ip=ratelimit.client_ip(request),
        )

    def _audit_object(self, request: HttpRequest, object_id: str, action: str) -> None:
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            self._audit(request, action, [obj], object_id=str(obj.pk))

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None:
            rows = list(changelist.result_list)
            self._audit(request, "admin.list", rows, rows=len(rows))
        return response

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        action = "admin.view" if request.method in ("GET", "HEAD") else "admin.change"
        self._audit_object(request, object_id, action)
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._audit_object(request, object_id, "admin.view")
        return super().history_view(request, object_id, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        action = "admin.view" if request.method in ("GET", "HEAD") else "admin.delete"
        self._audit_object(request, object_id, action)
        return super().delete_view(request, object_id, extra_context)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            self._audit(request, "admin.add", [obj], object_id=str(obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._audit(request, "admin.delete", list(queryset), rows=queryset.count())
        super().delete_queryset(request, queryset)
