from django.urls import URLPattern, URLResolver, path

from orders import api, views

# Portal pages of this app.
urlpatterns: list[URLPattern | URLResolver] = [
    path("orders/", views.order_list, name="order-list"),
    path("orders/new/", views.order_create, name="order-create"),
    path("orders/suggested/", views.order_suggested, name="order-suggested"),
    path("orders/export.csv", views.order_export, name="order-export"),
    path("orders/<int:order_id>/", views.order_detail, name="order-detail"),
    path("orders/<int:order_id>/transition/", views.order_transition, name="order-transition"),
    path("catalog/", views.product_list, name="product-list"),
    path("catalog/new/", views.product_create, name="product-create"),
    path("catalog/<int:product_id>/edit/", views.product_edit, name="product-edit"),
    path("catalog/unmatched/", views.mapping_list, name="mapping-list"),
    path("catalog/unmatched/<int:supply_id>/map/", views.mapping_create, name="mapping-create"),
    path("settings/reorder/", views.policy_list, name="policy-list"),
    path("settings/reorder/<int:policy_id>/delete/", views.policy_delete, name="policy-delete"),
    path("settings/notifications/", views.preference_edit, name="preference-edit"),
    path(
        "supply-alerts/<int:supply_alert_id>/rearm/",
        views.supply_alert_rearm,
        name="supply-alert-rearm",
    ),
    path("supplies/replacements/", views.replacement_list, name="replacement-list"),
    path("emails/", views.email_list, name="email-list"),
    path("emails/<int:email_id>/", views.email_detail, name="email-detail"),
]

# Routes under /api/v1/.
api_urlpatterns: list[URLPattern | URLResolver] = [
    path("orders", api.OrderListApi.as_view(), name="api-order-list"),
    path("orders/<int:order_id>", api.OrderDetailApi.as_view(), name="api-order-detail"),
    path(
        "orders/<int:order_id>/transition",
        api.OrderTransitionApi.as_view(),
        name="api-order-transition",
    ),
    path("products", api.ProductListApi.as_view(), name="api-product-list"),
]
