import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

application = get_wsgi_application()

# Import every view now rather than on the first request, then move everything loaded so far
# (settings, models, URL patterns, templates' modules) out of the collector's reach: it lives as
# long as the process, and without this each full collection walks it again, which cost a
# telemetry batch of 100 snapshots about 4 ms of its 40 ms of web CPU (docs/scale.md).
get_resolver().url_patterns  # noqa: B018 - imported for its side effect
gc.freeze()
