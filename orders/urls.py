from django.urls import URLPattern, URLResolver

# Portal pages of this app.
urlpatterns: list[URLPattern | URLResolver] = []

# Routes under /api/v1/.
api_urlpatterns: list[URLPattern | URLResolver] = []
