from django.urls import path

from accounts import api, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("customers/", views.customer_list, name="customer-list"),
    path("customers/new/", views.customer_create, name="customer-create"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer-detail"),
    path("customers/<int:customer_id>/edit/", views.customer_edit, name="customer-edit"),
    path("customers/<int:customer_id>/sites/new/", views.site_create, name="site-create"),
    path("sites/<int:site_id>/", views.site_detail, name="site-detail"),
    path("sites/<int:site_id>/edit/", views.site_edit, name="site-edit"),
    path("users/", views.user_list, name="user-list"),
    path("users/invite/", views.invitation_create, name="invitation-create"),
    path(
        "invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation-revoke",
    ),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
    path("memberships/<int:membership_id>/", views.membership_edit, name="membership-edit"),
    path("switch/", views.tenant_switch, name="tenant-switch"),
    path("audit/", views.audit_list, name="audit-list"),
    path("settings/reseller/", views.reseller_settings, name="reseller-settings"),
    path("settings/preferences/", views.preferences_edit, name="user-preferences"),
    path("settings/language/", views.language_set, name="language-set"),
    path("settings/tokens/", views.api_token_list, name="api-token-list"),
    path("settings/tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api-token-revoke"),
    path("operator/", views.operator_home, name="operator-home"),
    path(
        "operator/resellers/<int:reseller_id>/enter/", views.operator_enter, name="operator-enter"
    ),
    path("operator/leave/", views.operator_leave, name="operator-leave"),
    path("operator/audit/", views.operator_audit, name="operator-audit"),
]

api_urlpatterns = [
    path("me", api.MeApi.as_view(), name="api-me"),
    path("customers", api.CustomerListApi.as_view(), name="api-customer-list"),
    path(
        "customers/<int:customer_id>", api.CustomerDetailApi.as_view(), name="api-customer-detail"
    ),
    path(
        "customers/<int:customer_id>/sites",
        api.CustomerSiteListApi.as_view(),
        name="api-customer-site-list",
    ),
    path("sites/<int:site_id>", api.SiteDetailApi.as_view(), name="api-site-detail"),
]
