from django.urls import URLPattern, URLResolver, path

from integrations import views

# Portal pages of this app; webhooks have no API of their own yet.
urlpatterns: list[URLPattern | URLResolver] = [
    path("settings/webhooks/", views.webhook_endpoint_list, name="webhook-list"),
    path("settings/webhooks/new/", views.webhook_endpoint_create, name="webhook-create"),
    path(
        "settings/webhooks/<int:endpoint_id>/edit/",
        views.webhook_endpoint_edit,
        name="webhook-edit",
    ),
    path(
        "settings/webhooks/<int:endpoint_id>/rotate/",
        views.webhook_endpoint_rotate,
        name="webhook-rotate",
    ),
    path(
        "settings/webhooks/<int:endpoint_id>/test/",
        views.webhook_test_send,
        name="webhook-test",
    ),
    path("settings/webhooks/deliveries/", views.webhook_delivery_list, name="webhook-deliveries"),
    path(
        "settings/webhooks/deliveries/<int:delivery_id>/",
        views.webhook_delivery_detail,
        name="webhook-delivery-detail",
    ),
    path(
        "settings/webhooks/deliveries/<int:delivery_id>/redeliver/",
        views.webhook_redeliver,
        name="webhook-redeliver",
    ),
]
