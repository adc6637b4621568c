from django.urls import URLPattern, URLResolver, path

from devices import api, fleet_views, ingest, manage_views, views

# Portal pages of the devices app.
urlpatterns: list[URLPattern | URLResolver] = [
    path("settings/collectors/", views.credential_list, name="credential-list"),
    path("settings/collectors/new/", views.credential_create, name="credential-create"),
    path("settings/collectors/health/", manage_views.collector_health, name="collector-health"),
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
    # Device management (devices/manage_views.py).
    path("devices/import/", manage_views.device_import, name="device-import"),
    path("devices/<int:device_id>/rename/", manage_views.device_rename, name="device-rename"),
    path("devices/<int:device_id>/move/", manage_views.device_move, name="device-move"),
    path("devices/<int:device_id>/retire/", manage_views.device_retire, name="device-retire"),
    path("devices/<int:device_id>/unretire/", manage_views.device_unretire, name="device-unretire"),
    path("devices/<int:device_id>/notes/", manage_views.device_note_add, name="device-note-add"),
    path(
        "alerts/<int:alert_id>/acknowledge/",
        manage_views.alert_acknowledge,
        name="alert-acknowledge",
    ),
    path("alerts/<int:alert_id>/snooze/", manage_views.alert_snooze, name="alert-snooze"),
    path("alerts/<int:alert_id>/unsnooze/", manage_views.alert_unsnooze, name="alert-unsnooze"),
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
    # Read by integrations (docs/api.md).
    path("devices", api.DeviceListApi.as_view(), name="api-device-list"),
    path("devices/<int:device_id>", api.DeviceDetailApi.as_view(), name="api-device-detail"),
    path(
        "devices/<int:device_id>/counters",
        api.DeviceCounterListApi.as_view(),
        name="api-device-counter-list",
    ),
    path("supplies", api.SupplyListApi.as_view(), name="api-supply-list"),
    path("meter-reads", api.MeterReadListApi.as_view(), name="api-meter-read-list"),
    path("alerts", api.AlertListApi.as_view(), name="api-alert-list"),
]
