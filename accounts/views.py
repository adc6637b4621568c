"""Portal pages for the tenant's customers, sites, users, tokens and audit trail. Thin: parse,
call one service or selector, render."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.adapter import INVITATION_SESSION_KEY
from accounts.forms import (
    ApiTokenForm,
    CustomerForm,
    InvitationForm,
    MembershipRoleForm,
    PreferencesForm,
    ResellerForm,
    ResellerSettingsForm,
    SiteForm,
)
from accounts.models import User
from devices.fleet_views import customer_dashboard_context, fleet_dashboard_context
from orders.views import low_supply_context
from portal import i18n, labels, ratelimit, rls
from portal.errors import DomainError
from portal.pages import form_error, paginate
from portal.tenancy import (
    ADMIN_ROLES,
    SESSION_MEMBERSHIP_KEY,
    SESSION_OPERATOR_RESELLER_KEY,
    Role,
    tenant_view,
)


@tenant_view()
def dashboard(request: Any) -> HttpResponse:
    """The fleet and its supplies for everyone; the reseller's business (customers, users,
    invitations) for reseller roles; a customer's own printers and open orders for them."""
    ctx = request.ctx
    context: dict[str, Any] = {}
    context |= fleet_dashboard_context(ctx)
    context |= low_supply_context(ctx)
    if ctx.is_reseller_wide:
        context["counts"] = selectors.dashboard_counts(ctx=ctx)
        context["recent_customers"] = selectors.customer_list(ctx=ctx).order_by("-created_at")[:5]
    else:
        context |= customer_dashboard_context(ctx)
    return render(request, "accounts/dashboard.html", context)


@login_required
def preferences_edit(request: Any) -> HttpResponse:
    """The signed-in user's formats and time zone; no tenant needed (an operator has one too)."""
    user = request.user
    initial = {"language": user.language, "locale": user.locale, "time_zone": user.time_zone}
    form = PreferencesForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_preferences_update(
                user=user,
                language=form.cleaned_data["language"],
                locale=form.cleaned_data["locale"],
                time_zone=form.cleaned_data["time_zone"],
            )
        except DomainError as error:
            form_error(form, error)
        else:
            # The message is read on the next page, in the language just chosen.
            translation.activate(i18n.language_of(user) or translation.get_language())
            messages.success(request, _("Preferences saved."))
            response = redirect("user-preferences")
            _language_cookie_set(response, user.language)
            return response
    context = {"form": form, "sample_moment": now(), "sample_amount": Decimal("1234.5")}
    return render(request, "accounts/preferences.html", context)


# --- Customers and sites ------------------------------------------------------------------------


@tenant_view(*ADMIN_ROLES, Role.RESELLER_FINANCE, Role.RESELLER_SUPPORT)
def customer_list(request: Any) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    page = paginate(request, selectors.customer_list(ctx=request.ctx, search=search))
    template = "accounts/_customer_table.html" if request.htmx else "accounts/customer_list.html"
    return render(request, template, {"page": page, "q": search})


@tenant_view(*ADMIN_ROLES)
def customer_create(request: Any) -> HttpResponse:
    form = CustomerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            customer = services.customer_create(ctx=request.ctx, **form.cleaned_data)
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(
                request, _("Customer %(customer)s created.") % {"customer": customer.name}
            )
            return redirect("customer-detail", customer_id=customer.pk)
    return render(request, "accounts/customer_form.html", {"form": form})


@tenant_view()
def customer_detail(request: Any, customer_id: int) -> HttpResponse:
    ctx = request.ctx
    customer = selectors.customer_get(ctx=ctx, customer_id=customer_id)
    context = {
        "customer": customer,
        "sites": selectors.site_list(ctx=ctx, customer_id=customer.pk),
        "members": selectors.membership_list(ctx=ctx, customer_id=customer.pk),
    }
    return render(request, "accounts/customer_detail.html", context)


@tenant_view(*ADMIN_ROLES)
def customer_edit(request: Any, customer_id: int) -> HttpResponse:
    customer = selectors.customer_get(ctx=request.ctx, customer_id=customer_id)
    initial = {f: getattr(customer, f) for f in CustomerForm.base_fields}
    form = CustomerForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.customer_update(ctx=request.ctx, customer_id=customer.pk, **form.cleaned_data)
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, _("Customer saved."))
            return redirect("customer-detail", customer_id=customer.pk)
    return render(request, "accounts/customer_form.html", {"form": form, "customer": customer})


@tenant_view(*ADMIN_ROLES)
def site_create(request: Any, customer_id: int) -> HttpResponse:
    customer = selectors.customer_get(ctx=request.ctx, customer_id=customer_id)
    form = SiteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            site = services.site_create(
                ctx=request.ctx, customer_id=customer.pk, **form.cleaned_data
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(
                request,
                _("Site %(site)s added to %(customer)s.")
                % {"site": site.name, "customer": customer.name},
            )
            return redirect("site-detail", site_id=site.pk)
    return render(request, "accounts/site_form.html", {"form": form, "customer": customer})


@tenant_view()
def site_detail(request: Any, site_id: int) -> HttpResponse:
    site = selectors.site_get(ctx=request.ctx, site_id=site_id)
    return render(request, "accounts/site_detail.html", {"site": site})


@tenant_view(*ADMIN_ROLES)
def site_edit(request: Any, site_id: int) -> HttpResponse:
    site = selectors.site_get(ctx=request.ctx, site_id=site_id)
    form = SiteForm(request.POST or None, instance=site)
    if request.method == "POST" and form.is_valid():
        try:
            services.site_update(ctx=request.ctx, site_id=site.pk, **form.cleaned_data)
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, _("Site saved."))
            return redirect("site-detail", site_id=site.pk)
    context = {"form": form, "customer": site.customer, "site": site}
    return render(request, "accounts/site_form.html", context)


# --- Users, invitations, memberships ------------------------------------------------------------


@tenant_view(*ADMIN_ROLES)
def user_list(request: Any) -> HttpResponse:
    ctx = request.ctx
    context = {
        "page": paginate(request, selectors.membership_list(ctx=ctx)),
        "invitations": selectors.invitation_list(ctx=ctx),
    }
    return render(request, "accounts/user_list.html", context)


@tenant_view(*ADMIN_ROLES)
def invitation_create(request: Any) -> HttpResponse:
    ctx = request.ctx
    form = InvitationForm(
        request.POST or None,
        customers=selectors.customer_list(ctx=ctx),
        initial={"customer": request.GET.get("customer")},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            invitation = services.invitation_create(
                ctx=ctx,
                email=data["email"],
                role=data["role"],
                customer_id=data["customer"].pk if data["customer"] else None,
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(
                request, _("Invitation sent to %(email)s.") % {"email": invitation.email}
            )
            return redirect("user-list")
    return render(request, "accounts/invitation_form.html", {"form": form})


@require_POST
@tenant_view(*ADMIN_ROLES)
def invitation_revoke(request: Any, invitation_id: int) -> HttpResponse:
    try:
        invitation = services.invitation_revoke(ctx=request.ctx, invitation_id=invitation_id)
    except DomainError as error:
        if error.status == 404:
            raise
        messages.error(request, error.message)
    else:
        messages.success(
            request, _("Invitation of %(email)s revoked.") % {"email": invitation.email}
        )
    return redirect("user-list")


@tenant_view(*ADMIN_ROLES)
def membership_edit(request: Any, membership_id: int) -> HttpResponse:
    membership = selectors.membership_get(ctx=request.ctx, membership_id=membership_id)
    form = MembershipRoleForm(request.POST or None, initial={"role": membership.role})
    if request.method == "POST":
        try:
            if "remove" in request.POST:
                services.membership_remove(ctx=request.ctx, membership_id=membership.pk)
                messages.success(
                    request, _("%(user_email)s removed.") % {"user_email": membership.user.email}
                )
                return redirect("user-list")
            if form.is_valid():
                services.membership_update_role(
                    ctx=request.ctx, membership_id=membership.pk, role=form.cleaned_data["role"]
                )
                messages.success(
                    request,
                    _("Role of %(user_email)s changed.") % {"user_email": membership.user.email},
                )
                return redirect("user-list")
        except DomainError as error:
            if error.status == 404:
                raise
            form_error(form, error)
    return render(
        request, "accounts/membership_edit.html", {"form": form, "membership": membership}
    )


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The link in an invitation email. Anyone holding the token may see whom it invites."""
    rate = settings.INVITATION_ACCEPT_RATE_LIMIT
    # Counted before the lookup: every request is a guess at a token.
    if ratelimit.hit(scope="invitation-accept", ident=ratelimit.client_ip(request), rate=rate):
        return ratelimit.too_many_attempts_page(request, rate=rate)
    invitation = services.invitation_find(token=token)
    if invitation is None:
        raise Http404(_("This invitation link is not valid."))
    rls.activate(invitation.reseller_id)
    if invitation.status != "pending":
        return render(
            request, "accounts/invitation_accept.html", {"invitation": invitation}, status=410
        )
    if not request.user.is_authenticated:
        request.session[INVITATION_SESSION_KEY] = token
        if User.objects.filter(email__iexact=invitation.email).exists():
            return redirect_to_login(request.path)
        from allauth.account.adapter import get_adapter

        # The link proves the address: the new account needs no separate confirmation email.
        get_adapter(request).stash_verified_email(request, invitation.email)
        return redirect(f"/accounts/signup/?next={request.path}")
    error = None
    if request.method == "POST":
        try:
            membership = services.invitation_accept(token=token, user=request.user)
        except DomainError as exc:
            error = exc.message
        else:
            request.session.pop(INVITATION_SESSION_KEY, None)
            request.session[SESSION_MEMBERSHIP_KEY] = membership.pk
            request.session.pop(SESSION_OPERATOR_RESELLER_KEY, None)
            messages.success(
                request, _("Welcome to %(reseller)s.") % {"reseller": invitation.reseller.name}
            )
            return redirect("dashboard")
    context = {"invitation": invitation, "error": error}
    return render(request, "accounts/invitation_accept.html", context)


@require_POST
@login_required
def tenant_switch(request: Any) -> HttpResponse:
    """Act for another of the user's memberships (the switcher in the top bar)."""
    try:
        membership_id = int(request.POST.get("membership", ""))
    except ValueError:
        membership_id = -1
    if not any(m.pk == membership_id for m in request.memberships):
        raise Http404(_("No such membership."))
    request.session[SESSION_MEMBERSHIP_KEY] = membership_id
    request.session.pop(SESSION_OPERATOR_RESELLER_KEY, None)
    return redirect("dashboard")


@require_POST
def language_set(request: Any) -> HttpResponse:
    """The language switch of the top bar and the sign-in page: the signed-in user's own
    language, and for everyone a cookie that LocaleMiddleware reads on anonymous pages."""
    language = request.POST.get("language", "")
    if not i18n.language_valid(language):
        return HttpResponseBadRequest(_("Choose one of the listed languages."))
    if request.user.is_authenticated:
        services.user_preferences_update(
            user=request.user,
            language=language,
            locale=request.user.locale,
            time_zone=request.user.time_zone,
        )
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    response = redirect(target)
    _language_cookie_set(response, language)
    return response


def _language_cookie_set(response: HttpResponse, language: str) -> None:
    if not language:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
        return
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite="Lax",
    )


@tenant_view(*ADMIN_ROLES)
def reseller_settings(request: Any) -> HttpResponse:
    reseller = selectors.reseller_get(ctx=request.ctx)
    initial = {
        "name": reseller.name,
        "address": reseller.address,
        "support_email": reseller.support_email,
        "logo": reseller.logo or None,
    }
    form = ResellerSettingsForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.reseller_update(
                ctx=request.ctx,
                name=data["name"],
                address=data["address"],
                support_email=data["support_email"],
                logo=data["logo"] or None,
                remove_logo=data["logo"] is False,  # the "Clear" box of the file input
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, _("Settings saved."))
            return redirect("reseller-settings")
    return render(request, "accounts/reseller_settings.html", {"form": form, "reseller": reseller})


# --- Audit and API tokens -----------------------------------------------------------------------


@tenant_view(*ADMIN_ROLES)
def audit_list(request: Any) -> HttpResponse:
    action = request.GET.get("action", "").strip()
    page = paginate(request, selectors.audit_list(ctx=request.ctx, action=action), per_page=50)
    context = {"page": page, "action": action, "groups": labels.AUDIT_GROUPS.items()}
    return render(request, "accounts/audit_list.html", context)


@tenant_view(*ADMIN_ROLES)
def api_token_list(request: Any) -> HttpResponse:
    ctx = request.ctx
    form = ApiTokenForm(request.POST or None, customers=selectors.customer_list(ctx=ctx))
    created = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            token, raw = services.api_token_create(
                ctx=ctx,
                name=data["name"],
                role=data["role"],
                customer_id=data["customer"].pk if data["customer"] else None,
            )
        except DomainError as error:
            form_error(form, error)
        else:
            created = {"token": token, "raw": raw}
            form = ApiTokenForm(customers=selectors.customer_list(ctx=ctx))
    context = {"tokens": selectors.api_token_list(ctx=ctx), "form": form, "created": created}
    return render(request, "accounts/api_token_list.html", context)


@require_POST
@tenant_view(*ADMIN_ROLES)
def api_token_revoke(request: Any, token_id: int) -> HttpResponse:
    try:
        token = services.api_token_revoke(ctx=request.ctx, token_id=token_id)
    except DomainError as error:
        if error.status == 404:
            raise
        messages.error(request, error.message)
    else:
        messages.success(request, _("Token %(token)s revoked.") % {"token": token.name})
    return redirect("api-token-list")


# --- Platform operator console ----------------------------------------------------------------


def _operator(request: Any) -> None:
    if not request.user.is_superuser:
        raise PermissionDenied(_("Platform operators only."))
    rls.activate_system("the operator console lists and creates resellers")


@login_required
def operator_home(request: Any) -> HttpResponse:
    _operator(request)
    form = ResellerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            reseller = services.reseller_create(by=request.user, **form.cleaned_data)
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(
                request, _("Reseller %(reseller)s created.") % {"reseller": reseller.name}
            )
            return redirect("operator-home")
    page = paginate(request, selectors.operator_reseller_list(user=request.user))
    return render(request, "accounts/operator_home.html", {"page": page, "form": form})


@require_POST
@login_required
def operator_enter(request: Any, reseller_id: int) -> HttpResponse:
    """Act inside a reseller as its operator; every page seen from now on is audited."""
    _operator(request)
    if not selectors.operator_reseller_list(user=request.user).filter(pk=reseller_id).exists():
        raise Http404(_("No such reseller."))
    request.session[SESSION_OPERATOR_RESELLER_KEY] = reseller_id
    return redirect("dashboard")


@require_POST
@login_required
def operator_leave(request: Any) -> HttpResponse:
    request.session.pop(SESSION_OPERATOR_RESELLER_KEY, None)
    return redirect("operator-home")


@login_required
def operator_audit(request: Any) -> HttpResponse:
    _operator(request)
    page = paginate(request, selectors.operator_audit_list(user=request.user), per_page=50)
    return render(request, "accounts/operator_audit.html", {"page": page})
