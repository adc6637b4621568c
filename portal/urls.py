"""Every route of the portal. App routes live in each app's urls.py; the API under /api/v1/."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.urls import api_urlpatterns as accounts_api
from billing.urls import api_urlpatterns as billing_api
from devices.urls import api_urlpatterns as devices_api
from orders.urls import api_urlpatterns as orders_api
from portal import views

api_v1 = [
    *accounts_api,
    *devices_api,
    *billing_api,
    *orders_api,
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs",
        # Swagger UI sets style attributes as it renders; scripts stay self-only.
        csp_update({"style-src": [UNSAFE_INLINE]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
]

# Unrouted /api/ paths, and /api/ requests refused before a view, answer in the API's error
# format, like its views.
handler404 = "portal.api.not_found"
handler400 = "portal.api.bad_request"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("", include("accounts.urls")),
    path("", include("devices.urls")),
    path("", include("billing.urls")),
    path("", include("orders.urls")),
    path("", include("integrations.urls")),
]
