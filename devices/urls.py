from django.urls import URLPattern, URLResolver, path

from devices import api, fleet_views, ingest, views

# Portal pages of the devices app.
urlpatterns: list[URLPattern | URLResolver] = [
    path("settings/collectors/", views.credential_list, name="credential-list"),
    path("settings/collectors/new/", views.credential_create, name="credential-create"),
    path(
        "settings/collectors/<int:credential_id>/",
        views.credential_detail,
        name="credential-detail",
    ),
    path(
        "settings/collectors/<int:credential_id>/rotate/",
        views.credential_rotate,
        name="credential-rotate",
    ),
    path(
        "settings/collectors/<int:credential_id>/revoke/",
        views.credential_revoke,
        name="credential-revoke",
    ),
    path(
        "settings/collectors/<int:credential_id>/config/",
        views.collector_config_edit,
        name="collector-config-edit",
    ),
    path(
        "customers/<int:customer_id>/telemetry-privacy/",
        views.telemetry_policy_edit,
        name="telemetry-policy-edit",
    ),
    # Fleet pages (devices/fleet_views.py).
    path("devices/", fleet_views.device_list, name="device-list"),
    path("devices/<int:device_id>/", fleet_views.device_detail, name="device-detail"),
    path("supplies/", fleet_views.supply_list, name="supply-list"),
    path("alerts/", fleet_views.alert_list, name="alert-list"),
]

# Routes under /api/v1/.
api_urlpatterns: list[URLPattern | URLResolver] = [
    path("telemetry", ingest.telemetry, name="api-telemetry"),
    path("collector/config", ingest.collector_config, name="api-collector-config"),
    path("credentials", api.CredentialListApi.as_view(), name="api-credential-list"),
    path(
        "credentials/<int:credential_id>",
        api.CredentialDetailApi.as_view(),
        name="api-credential-detail",
    ),
    path(
        "credentials/<int:credential_id>/rotate",
        api.CredentialRotateApi.as_view(),
        name="api-credential-rotate",
    ),
    path(
        "credentials/<int:credential_id>/config",
        api.CollectorConfigApi.as_view(),
        name="api-collector-config-edit",
    ),
]
