"""Inkmeter settings: one module, configured from the environment.

The defaults run the embedded demo (SQLite, eager Celery, local-memory cache, console email).
Production sets DEBUG=False, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL and EMAIL_URL;
each secret may also come from a file named by `<NAME>_FILE` (Docker and Kubernetes secrets).
The README has a table of every setting.
"""

import os
import warnings
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("INKMETER_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")


def _secret(name: str, default: str | None = None) -> str | None:
    """A secret from the environment, or from the file named by `<name>_FILE`."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        return Path(path).read_text().strip()
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = _secret("SECRET_KEY", "django-insecure-demo-key-set-SECRET_KEY-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Public base URL, used in emails and in the credentials printed for collectors.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "accounts.apps.AdminConfig",  # django.contrib.admin, with accounts/admin_site.py
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "csp",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "portal",
    "accounts",
    "devices",
    "billing",
    "orders",
    "integrations",
]

MIDDLEWARE = [
    "portal.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The browser's language (its language cookie, then Accept-Language); after the session,
    # before CommonMiddleware. PreferencesMiddleware puts a signed-in user's own choice over it.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "portal.middleware.RejectNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "portal.middleware.PreferencesMiddleware",
    "portal.tenancy.TenantMiddleware",
    "accounts.middleware.RequireMFAMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.tenant",
            ],
            # Numbers, money, times and labels (portal/templatetags/fmt.py) in every template.
            "builtins": ["portal.templatetags.fmt"],
        },
    },
]

# --- Data -----------------------------------------------------------------------------------

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'inkmeter.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
IS_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if DATABASES["default"]["NAME"] == str(VAR_DIR / "inkmeter.sqlite3"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
if not IS_POSTGRES:
    # SQLite: wait for the writer instead of failing at once, as concurrent demo requests would.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Row-level security on PostgreSQL (portal/rls.py): the app works as DATABASE_APP_ROLE, which
# owns no table; migrations run as the owner, who logs in with DATABASE_OWNER_URL when the
# app's DATABASE_URL names the app role itself (production), or with DATABASE_URL otherwise.
INKMETER_RLS = env.bool("INKMETER_RLS", default=True)
DATABASE_APP_ROLE = env.str("DATABASE_APP_ROLE", default="inkmeter_app")
# With the wall up, a request is one transaction (portal.tenancy.TenantMiddleware) and each
# view a savepoint within it, so that a failing view leaves nothing behind.
DATABASES["default"]["ATOMIC_REQUESTS"] = IS_POSTGRES and INKMETER_RLS
DATABASE_OWNER = {
    key: value
    for key, value in (
        env.db("DATABASE_OWNER_URL") if env.str("DATABASE_OWNER_URL", "") else {}
    ).items()
    if key in {"USER", "PASSWORD", "HOST", "PORT"}
}

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery: Redis when REDIS_URL is set, otherwise tasks run eagerly in-process -------------

CELERY_BROKER_URL = REDIS_URL or "memory://"
# kombu's Redis transport with a guard that keeps the worker alive when Redis goes away
# while a task is in flight (portal/broker.py).
CELERY_BROKER_TRANSPORT = "portal.broker:Transport" if REDIS_URL else None
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection before and after every task unless it
# may reuse it: a new PostgreSQL backend per task, its caches and prepared statements rebuilt
# each time. It now closes one every 1,000 tasks; CONN_MAX_AGE and broken connections are
# handled between tasks as between requests (portal.db.task_connections_recycle).
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged task (its worker was killed) after this long; beat sweeps
# cover anything lost. It must exceed the longest task time limit, or a slow task runs twice.
visibility_timeout = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": visibility_timeout,
    # Workers look for such tasks every 10 x this many seconds (100 s by default): a short
    # timeout gets a shorter period, or redelivery would wait for the look rather than it.
    "unacked_restore_interval": max(1, min(10, visibility_timeout // 100)),
}
# A web process whose broker connection broke (Redis down) tries it once when publishing, not
# for broker_connection_timeout with 2 s and 4 s pauses (6 s more on every request): ingestion
# leaves a follow-up it could not queue to the sweep and answers at once. Workers are not
# slowed down by it: they reconnect by broker_connection_retry, which passes its own limits.
CELERY_BROKER_TRANSPORT_OPTIONS["max_retries"] = 0
CELERY_TIMEZONE = "UTC"
# readyz fails when no worker has run the beat's heartbeat task (every minute) for this long.
CELERY_HEARTBEAT_STALE_MINUTES = env.int("CELERY_HEARTBEAT_STALE_MINUTES", default=5)

# --- Email ----------------------------------------------------------------------------------

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Inkmeter <noreply@inkmeter.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Seconds per SMTP socket operation: a stalled mail server must not hold a worker forever.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# A worker sending an email holds it this long (orders/email_services.py); if the worker dies,
# the email is sent again once the lease has run out. Longer than one send can take (a few
# EMAIL_TIMEOUTs), or a slow live sender and a rerun would both send.
EMAIL_SEND_LEASE_SECONDS = env.int("EMAIL_SEND_LEASE_SECONDS", default=300)
# Sends tried (errors back off between tries) before an email is marked failed.
EMAIL_SEND_ATTEMPTS = env.int("EMAIL_SEND_ATTEMPTS", default=5)

# --- Webhooks (integrations/, docs/webhooks.md) ---------------------------------------------

# Seconds to connect to a receiver and to wait for each read of its answer: a slow receiver
# costs a retry, never a stuck worker.
WEBHOOK_CONNECT_TIMEOUT = env.float("WEBHOOK_CONNECT_TIMEOUT", default=3.0)
WEBHOOK_READ_TIMEOUT = env.float("WEBHOOK_READ_TIMEOUT", default=10.0)
# Attempts (errors back off exponentially, with jitter, between them) before a delivery fails.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
# The first retry waits about this long, each later one about twice as long, at most an hour.
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
# Endpoints on loopback, private, link-local or reserved addresses are refused (the portal's
# own network must not be reachable through it, SSRF); a development set-up or the tests that
# deliver to a local server turn this on explicitly.
WEBHOOK_ALLOW_PRIVATE_URLS = env.bool("WEBHOOK_ALLOW_PRIVATE_URLS", default=False)

# --- Authentication (django-allauth, email login, TOTP for privileged roles) ----------------

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Inkmeter] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
# Failed logins are limited per IP and per account; allauth answers 429 past these.
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Inkmeter"
# Tell a reused code apart from a wrong one (accounts/mfa_forms.py).
MFA_FORMS = {
    "authenticate": "accounts.mfa_forms.MfaAuthenticateForm",
    "reauthenticate": "accounts.mfa_forms.MfaReauthenticateForm",
}
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Invitations sent by reseller admins stay valid this long.
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)
# Attempt limits per client IP (portal/ratelimit.py), written like ACCOUNT_RATE_LIMITS: past
# them the answer is 429. Failed authentication is also counted per key the request named, and
# valid credentials are never refused. Invitation links are tried per request: someone opening
# their own link a few times stays far below; guessing tokens does not.
INVITATION_ACCEPT_RATE_LIMIT = env.str("INVITATION_ACCEPT_RATE_LIMIT", default="30/10m")
# Failed `Authorization: Bearer` attempts on the API, per IP and per token key.
API_AUTH_FAILURE_RATE_LIMIT = env.str("API_AUTH_FAILURE_RATE_LIMIT", default="20/10m")
API_AUTH_FAILURE_KEY_RATE_LIMIT = env.str("API_AUTH_FAILURE_KEY_RATE_LIMIT", default="20/10m")
# Failed signatures on the telemetry endpoints. Higher per IP: one site's collectors share one.
TELEMETRY_AUTH_FAILURE_RATE_LIMIT = env.str("TELEMETRY_AUTH_FAILURE_RATE_LIMIT", default="120/10m")
TELEMETRY_AUTH_FAILURE_KEY_RATE_LIMIT = env.str(
    "TELEMETRY_AUTH_FAILURE_KEY_RATE_LIMIT", default="30/10m"
)

# --- Telemetry ingestion (devices) ---------------------------------------------------------

# Fernet key(s) that encrypt device credential secrets at rest, so a database dump alone does not
# reveal them. Any string works (it is hashed into a key); comma-separate several to rotate: the
# first encrypts, all decrypt. The default is derived from SECRET_KEY, for the demo only.
CREDENTIAL_ENCRYPTION_KEY = _secret("CREDENTIAL_ENCRYPTION_KEY", "") or f"derived:{SECRET_KEY}"
# After a rotation the previous secret stays valid this long.
CREDENTIAL_ROTATION_GRACE_HOURS = env.int("CREDENTIAL_ROTATION_GRACE_HOURS", default=24)
# Size limits of one telemetry request: as sent (gzip) and decompressed. Past them: 413.
TELEMETRY_MAX_BODY_BYTES = env.int("TELEMETRY_MAX_BODY_BYTES", default=1024 * 1024)
TELEMETRY_MAX_DECOMPRESSED_BYTES = env.int(
    "TELEMETRY_MAX_DECOMPRESSED_BYTES", default=16 * 1024 * 1024
)
# A signed request's timestamp may differ from the portal's clock by this much.
TELEMETRY_CLOCK_SKEW_SECONDS = env.int("TELEMETRY_CLOCK_SKEW_SECONDS", default=300)
# Direct-connect printers are expected to report this often (offline after twice as long).
DIRECT_REPORT_INTERVAL_MINUTES = env.int("DIRECT_REPORT_INTERVAL_MINUTES", default=240)
# A data collector quiet this long (or three of its upload intervals, if longer) counts as
# silent: collectors_silent_sweep marks it and emails the reseller's support address once.
COLLECTOR_SILENT_AFTER_MINUTES = env.int("COLLECTOR_SILENT_AFTER_MINUTES", default=120)
# A batch whose follow-up task (alert mail, supply evaluation) has not run this long after the
# batch's commit is taken over by the beat's sweep (every two minutes): the broker was down when
# the batch came in, or the task was lost with it.
TELEMETRY_FOLLOWUP_GRACE_SECONDS = env.int("TELEMETRY_FOLLOWUP_GRACE_SECONDS", default=120)

# --- API ------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.authentication.ApiTokenAuthentication",
        "portal.authentication.SessionTenantAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.authentication.HasTenant"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "portal.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_RATES": {"token": "600/min"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Inkmeter API",
    "DESCRIPTION": (
        "Tenant-scoped REST API of the Inkmeter portal. Integrations authenticate with "
        "`Authorization: Bearer <token>`; tokens are created by a reseller admin in the portal."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Several models have a `status`; each enum gets a stable name of its own.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.Order.Status",
        "StatementStatusEnum": "billing.models.Statement.Status",
        "DeviceStatusEnum": "devices.fleet_selectors.DeviceStatus",
    },
    # The signed telemetry endpoints are plain Django views; this hook documents them.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "devices.openapi.telemetry_paths",
    ],
}

# --- Static files (vendored assets, served by WhiteNoise; no CDN) ---------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"
# Built images run collectstatic and set STATIC_MANIFEST=1 for hashed, far-future-cached names.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
# Without collectstatic there is no STATIC_ROOT; the finders serve the files instead.
warnings.filterwarnings("ignore", message="No directory at: ")

# --- Security -------------------------------------------------------------------------------

SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 12
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
BEHIND_PROXY = env.bool("BEHIND_PROXY", default=False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Proxies of ours in front of the portal: the client IP that login and attempt limits count is
# the X-Forwarded-For entry this many hops back. Without it, behind a proxy every client would
# share the proxy's address, and one guesser would lock everybody out.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1 if BEHIND_PROXY else 0)
# Health checks and scrapes come from inside the network over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# The bearer token of /metrics (Prometheus' `authorization` setting); unset: no /metrics.
METRICS_TOKEN = _secret("METRICS_TOKEN", "")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    },
}

# --- Internationalisation: datetimes are aware and stored in UTC ----------------------------

# The language of pages for people who chose none and whose browser asks for none we have,
# and of emails to addresses that belong to no user (a site's contact, a support inbox).
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en")
# The languages the portal is translated into (locale/<code>/LC_MESSAGES/django.po). A user's
# own choice (accounts.User.language) is one of these codes.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The cookie the language switch sets for visitors who are not signed in (and for the browser
# of those who are, so that the sign-in page after a sign-out keeps the language).
LANGUAGE_COOKIE_NAME = "inkmeter_language"
LANGUAGE_COOKIE_AGE = 60 * 60 * 24 * 365
LANGUAGE_COOKIE_SECURE = not DEBUG
LANGUAGE_COOKIE_HTTPONLY = True
# The installation's time zone and number/date conventions (portal/formatting.py): for
# documents and emails, and for users who chose none (they set their own under Preferences).
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
DEFAULT_LOCALE = env.str("DEFAULT_LOCALE", default="en-us")
USE_I18N = True
USE_TZ = True

# Plain lines for people (the demo), JSON lines for log shippers. Either way every line of a
# request or task names its id (portal/logging.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "portal.logging.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s%(context)s %(message)s"},
        "json": {"()": "portal.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
# The worker logs through LOGGING above (JSON too), not through Celery's own root handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
