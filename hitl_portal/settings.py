"""One env-driven configuration for every deployment of the portal.

Nothing here differs by file: the embedded default (no configuration: SQLite and
an embedded Celery broker) and production (``DJANGO_ENV=production``:
PostgreSQL, Redis, gunicorn) are the same module reading different variables.
Production refuses to start without the settings it cannot guess.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any, overload

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from hitl_portal.webhook_allow import AllowListError, parse_allow_list

BASE_DIR = Path(__file__).resolve().parent.parent
# Runtime state of the embedded default (SQLite files, embedded broker, collected
# static files) lives here; the folder is git-ignored.
VAR_DIR = Path(os.environ.get("HITL_VAR_DIR", BASE_DIR / "var"))


@overload
def env(name: str) -> str | None: ...


@overload
def env(name: str, default: str) -> str: ...


@overload
def env(name: str, default: str | None) -> str | None: ...


def env(name: str, default: str | None = None) -> str | None:
    """Read one setting from the environment (the only place settings come from)."""
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return int(value) if value is not None else default


def env_float(name: str, default: float) -> float:
    value = env(name)
    return float(value) if value is not None else default


PLAN_CACHE_MODES = ("auto", "force_custom_plan", "force_generic_plan")


def env_plan_cache_mode(name: str, default: str) -> str:
    """A PostgreSQL ``plan_cache_mode`` from the environment; refuse to start on anything else."""
    value = env(name, default)
    if value not in PLAN_CACHE_MODES:
        raise ImproperlyConfigured(f"{name} must be auto, force_custom_plan or force_generic_plan, not {value!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = env(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DJANGO_ENV = env("DJANGO_ENV", "development")
PRODUCTION = DJANGO_ENV == "production"
TESTING = "pytest" in sys.modules or env_bool("HITL_TESTING")

# Production refuses to start half-configured: every process (web, worker, beat,
# manage.py) stops here, naming what is missing, instead of failing at first use.
# The audit signing key may come as PEM in the variable or as a file
# (HITL_AUDIT_SIGNING_KEY_FILE); the embedded default generates one, production never does.
PRODUCTION_REQUIRED = ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "HITL_AUDIT_SIGNING_KEY")
if PRODUCTION:
    missing = [name for name in PRODUCTION_REQUIRED if not env(name)]
    if "HITL_AUDIT_SIGNING_KEY" in missing and env("HITL_AUDIT_SIGNING_KEY_FILE"):
        if not Path(env("HITL_AUDIT_SIGNING_KEY_FILE", "")).is_file():
            raise ImproperlyConfigured(
                "DJANGO_ENV=production: HITL_AUDIT_SIGNING_KEY_FILE names no readable file "
                f"({env('HITL_AUDIT_SIGNING_KEY_FILE')}); set HITL_AUDIT_SIGNING_KEY or fix the path"
            )
        missing.remove("HITL_AUDIT_SIGNING_KEY")
    if missing:
        raise ImproperlyConfigured(
            "DJANGO_ENV=production needs these environment variables: " + ", ".join(missing)
        )

SECRET_KEY = env("SECRET_KEY") or "insecure-embedded-default-key-change-me-" + "x" * 24
DEBUG = env_bool("DJANGO_DEBUG", default=False) and not PRODUCTION
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "mozilla_django_oidc",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_celery_beat",
    "csp",
    # The floors, bottom to top (docs/ARCHITECTURE.md; checked by import-linter).
    "hitl_portal",
    "audit",
    "reviews",
    "quality",
    "incidents",
    "fairness",
    "records",
    "dashboard",
    "compliance",
]

MIDDLEWARE = [
    "hitl_portal.middleware.RequestIdMiddleware",
    "hitl_portal.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "hitl_portal.middleware.CSPMiddleware",
    "hitl_portal.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "hitl_portal.middleware.MFARequiredMiddleware",
    "hitl_portal.middleware.ActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hitl_portal.urls"
WSGI_APPLICATION = "hitl_portal.wsgi.application"
ASGI_APPLICATION = "hitl_portal.asgi.application"

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
                "hitl_portal.context_processors.portal",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL")
DATABASES: dict[str, Any]  # dj_database_url.DBConfig or the SQLite dict below
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
            # A SELECT 1 before the first query of each request that reuses a connection: a
            # connection the server dropped fails cleanly instead of failing the request.
            conn_health_checks=env("DB_CONN_HEALTH_CHECKS", "1") != "0",
        )
    }
    if env("DB_SERVER_SIDE_BINDING", "1") != "0" and DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # psycopg binds parameters on the server instead of quoting each value into the
        # statement's text in Python: about a fifth less web CPU per request on the hot paths
        # (docs/PERFORMANCE.md). DB_SERVER_SIDE_BINDING=0 goes back to client-side binding.
        DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
        # psycopg prepares a statement a connection has run this many times, so PostgreSQL
        # parses it once per connection instead of on every execution (docs/PERFORMANCE.md).
        # Django turns this off by default for connection poolers: behind PgBouncer in
        # transaction mode before 1.21 (which does not track prepared statements) set
        # DB_PREPARE_THRESHOLD=off.
        threshold = (env("DB_PREPARE_THRESHOLD") or "5").strip().lower()
        if threshold not in ("off", "none") and not threshold.isdigit():
            raise ImproperlyConfigured(f"DB_PREPARE_THRESHOLD must be a whole number or off, not {threshold!r}")
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = (
            None if threshold in ("off", "none") else int(threshold)
        )
        # A prepared statement is still planned for its parameters on every execution: with
        # PostgreSQL's default (auto) a statement run often gets one generic plan, which
        # halves the hot paths' database CPU but made the reviewer quality pages 3x slower at
        # 1 M cases (a generic plan cannot tell that a parameter meets a partial index's
        # condition, so it cannot use the index). So this default is custom plans, and only the hot
        # paths ask for generic ones (below).
        plan_cache_mode = env_plan_cache_mode("DB_PLAN_CACHE_MODE", "force_custom_plan")
        options = DATABASES["default"]["OPTIONS"].get("options", "")
        DATABASES["default"]["OPTIONS"]["options"] = f"{options} -c plan_cache_mode={plan_cache_mode}".strip()
        HITL_DB_PLAN_CACHE_MODE = plan_cache_mode
        # The write hot paths (ingest, batch ingest, claim, decision) switch their session to
        # this mode (hitl_portal.plans): their statements are key lookups and inserts, whose
        # generic plans cost nearly half the database CPU. Set it to force_custom_plan to
        # plan them like everything else.
        HITL_HOT_PATH_PLAN_CACHE_MODE = env_plan_cache_mode("DB_HOT_PATH_PLAN_CACHE_MODE", "auto")
        if DATABASES["default"]["OPTIONS"]["prepare_threshold"] is None:
            # Nothing is prepared, so there is no plan to keep; and behind a pooler in
            # transaction mode (the reason to turn preparing off) a session SET would
            # reach other clients' sessions. So no switch.
            HITL_HOT_PATH_PLAN_CACHE_MODE = plan_cache_mode
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "portal.sqlite3",
            "OPTIONS": {
                # WAL lets the web server, the worker and beat read while one writes;
                # the busy timeout makes a writer wait for the lock instead of failing.
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
                ),
            },
        }
    }
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# Covering indexes (INCLUDE) serve PostgreSQL's index-only scans; SQLite builds the same index
# without the included columns, as intended, and Django would warn (models.W040) at every migrate.
SILENCED_SYSTEM_CHECKS: list[str] = [] if IS_POSTGRES else ["models.W040"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing with the default iteration count dominates test time; production keeps it.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
if TESTING:
    _STATIC_BACKEND = "django.contrib.staticfiles.storage.StaticFilesStorage"
elif PRODUCTION:
    # Hashed names (cached forever by browsers) plus pre-compressed gzip/brotli copies.
    _STATIC_BACKEND = "whitenoise.storage.CompressedManifestStaticFilesStorage"
else:
    # The embedded default skips compression: it would make every quickstart's
    # collectstatic take minutes (the API docs' assets are large) for no gain on loopback.
    _STATIC_BACKEND = "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": _STATIC_BACKEND},
}
# Tests (and DEBUG) serve static files straight from the apps, without collectstatic.
WHITENOISE_USE_FINDERS = DEBUG or TESTING
WHITENOISE_AUTOREFRESH = DEBUG or TESTING
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"

# --- Case attachments (images, PDFs, recordings uploaded with cases) ----------------------
# Never served from MEDIA_URL: only the permission-checked attachment views hand them out.
HITL_ATTACHMENT_STORAGE = env("HITL_ATTACHMENT_STORAGE", "filesystem")
if HITL_ATTACHMENT_STORAGE == "s3":
    # Any S3-compatible store through django-storages (boto3 must be installed:
    # ``pip install 'boto3==…'``, see the README). Credentials come from the standard
    # AWS_* variables or the instance's role; the bucket must not be public.
    STORAGES["attachments"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("HITL_ATTACHMENT_S3_BUCKET"),
            "endpoint_url": env("HITL_ATTACHMENT_S3_ENDPOINT_URL"),
            "region_name": env("HITL_ATTACHMENT_S3_REGION"),
            "location": env("HITL_ATTACHMENT_S3_PREFIX", "hitl-attachments"),
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
    if not env("HITL_ATTACHMENT_S3_BUCKET"):
        raise ImproperlyConfigured("HITL_ATTACHMENT_STORAGE=s3 needs HITL_ATTACHMENT_S3_BUCKET")
elif HITL_ATTACHMENT_STORAGE == "filesystem":
    STORAGES["attachments"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT / "attachments"), "base_url": None},
    }
else:
    raise ImproperlyConfigured("HITL_ATTACHMENT_STORAGE must be 'filesystem' or 's3'")
# Largest attachment accepted (bytes); must stay below HITL_MAX_BODY_BYTES.
HITL_ATTACHMENT_MAX_BYTES = env_int("HITL_ATTACHMENT_MAX_BYTES", 5 * 1024 * 1024)
HITL_ATTACHMENT_MAX_PER_CASE = env_int("HITL_ATTACHMENT_MAX_PER_CASE", 20)
# Types accepted, as sniffed from the file's first bytes (SVG is never accepted: it can carry script).
HITL_ATTACHMENT_TYPES = env_list(
    "HITL_ATTACHMENT_TYPES",
    ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "audio/mpeg", "audio/wav",
     "audio/ogg", "video/mp4", "video/webm"],
)
# Origins (scheme://host[:port]) from which the workbench may load images, audio and video
# that a case's input names by URL; any other remote URL is shown as text, not loaded.
HITL_MEDIA_ALLOWED_ORIGINS = env_list("HITL_MEDIA_ALLOWED_ORIGINS", [])

# Mail (notifications): EMAIL_URL like smtp://user:password@host:587?tls=true, or console:// (the default:
# printed to the worker's log). EMAIL_BACKEND/EMAIL_HOST/EMAIL_PORT still work when EMAIL_URL is unset.
def _email_settings(url: str | None) -> dict[str, Any]:
    from urllib.parse import parse_qs, unquote, urlsplit

    if not url:
        return {"EMAIL_BACKEND": env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"),
                "EMAIL_HOST": env("EMAIL_HOST", "localhost"), "EMAIL_PORT": env_int("EMAIL_PORT", 25),
                "EMAIL_HOST_USER": "", "EMAIL_HOST_PASSWORD": "", "EMAIL_USE_TLS": False, "EMAIL_USE_SSL": False}
    parts = urlsplit(url)
    backends = {"smtp": "django.core.mail.backends.smtp.EmailBackend",
                "smtps": "django.core.mail.backends.smtp.EmailBackend",
                "console": "django.core.mail.backends.console.EmailBackend",
                "memory": "django.core.mail.backends.locmem.EmailBackend"}
    if parts.scheme not in backends:
        raise ImproperlyConfigured(f"EMAIL_URL: unknown scheme {parts.scheme!r} (smtp, smtps, console, memory)")
    query = parse_qs(parts.query)
    return {"EMAIL_BACKEND": backends[parts.scheme], "EMAIL_HOST": parts.hostname or "localhost",
            "EMAIL_PORT": parts.port or (465 if parts.scheme == "smtps" else 25),
            "EMAIL_HOST_USER": unquote(parts.username or ""), "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
            "EMAIL_USE_TLS": query.get("tls", ["false"])[0].lower() in {"1", "true", "yes"},
            "EMAIL_USE_SSL": parts.scheme == "smtps"}


_EMAIL = _email_settings(env("EMAIL_URL"))
EMAIL_BACKEND = _EMAIL["EMAIL_BACKEND"]
EMAIL_HOST = _EMAIL["EMAIL_HOST"]
EMAIL_PORT = _EMAIL["EMAIL_PORT"]
EMAIL_HOST_USER = _EMAIL["EMAIL_HOST_USER"]
EMAIL_HOST_PASSWORD = _EMAIL["EMAIL_HOST_PASSWORD"]
EMAIL_USE_TLS = _EMAIL["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _EMAIL["EMAIL_USE_SSL"]
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "hitl-portal@localhost")
# Chat webhooks every alert also goes to (Apprise URLs, comma-separated: slack://…, msteams://…, json://…).
HITL_NOTIFY_CHAT_URLS = env_list("HITL_NOTIFY_CHAT_URLS", [])
# Delivery retries: attempts before giving up, and the first backoff (doubling each time).
HITL_NOTIFY_MAX_ATTEMPTS = env_int("HITL_NOTIFY_MAX_ATTEMPTS", 6)
HITL_NOTIFY_RETRY_BASE_S = env_int("HITL_NOTIFY_RETRY_BASE_S", 60)
# Absolute links in mails (e.g. https://portal.example.org); relative when unset.
HITL_BASE_URL = env("HITL_BASE_URL", "")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Identity: login lockout, API tokens, single sign-on, second factor ----------------
# django-axes sees every password login (the login page, the admin login, the token
# endpoint) because each calls ``authenticate(request=...)``; its backend goes first.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("HITL_LOGIN_LOCKOUT", True)
AXES_FAILURE_LIMIT = env_int("HITL_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("HITL_LOGIN_COOLOFF_MINUTES", 15))
# Per user name and, separately, per client address: guessing one account from many
# addresses and many accounts from one address are both stopped.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Attempts while locked out do not extend the lock: the owner gets in after the cool-off.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Attempts are not edited in the console: lockouts are lifted by the audited user action.
AXES_ENABLE_ADMIN = False
# The client address the same way DRF's throttles see it (HITL_NUM_PROXIES hops trusted).
AXES_CLIENT_IP_CALLABLE = "hitl_portal.middleware.client_ip"

# API tokens: stored hashed (SHA-512) by django-rest-knox, shown once, expiring.
HITL_TOKEN_TTL = dt.timedelta(hours=env_int("HITL_TOKEN_TTL_HOURS", 10))
# Every authenticated use moves a person's expiry to now + TTL, up to this lifetime.
HITL_TOKEN_MAX_LIFETIME = dt.timedelta(days=env_int("HITL_TOKEN_MAX_LIFETIME_DAYS", 30))
# Integrations are machines: long-lived tokens that an officer rotates (0 = never expire).
HITL_TOKEN_TTL_INTEGRATION = dt.timedelta(days=env_int("HITL_TOKEN_TTL_INTEGRATION_DAYS", 365))
HITL_TOKENS_PER_USER = env_int("HITL_TOKENS_PER_USER", 10)
REST_KNOX = {
    "TOKEN_TTL": HITL_TOKEN_TTL,
    "AUTO_REFRESH": True,
    "AUTO_REFRESH_MAX_TTL": HITL_TOKEN_MAX_LIFETIME,
    # A refresh is a write: at most one per token per minute.
    "MIN_REFRESH_INTERVAL": 60,
    "AUTH_HEADER_PREFIX": "Token",
}

# TOTP second factor (django-otp) for compliance officers and admins.
HITL_REQUIRE_MFA = env_bool("HITL_REQUIRE_MFA", False)
OTP_TOTP_ISSUER = env("HITL_MFA_ISSUER", "HITL Governance Portal")

# OpenID Connect single sign-on (mozilla-django-oidc); on when a client id is set.
OIDC_RP_CLIENT_ID = env("OIDC_RP_CLIENT_ID")
OIDC_ENABLED = OIDC_RP_CLIENT_ID is not None
OIDC_RP_CLIENT_SECRET = env("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = env("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = env("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = env("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = env("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = env("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env("OIDC_RP_SCOPES", "openid email profile")
OIDC_USE_PKCE = True
# Match the token's key id against the provider's keys; a provider whose tokens carry no
# ``kid`` (one signing key) needs ``false`` (the signature is still verified).
OIDC_VERIFY_KID = env_bool("OIDC_VERIFY_KID", True)
OIDC_TIMEOUT = 10
OIDC_CREATE_USER = True
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
# Which claim names the user, which claim holds the groups, and how groups map to roles
# ("idp-group=role,other=role"); a person whose claims map to no role is refused.
HITL_OIDC_USERNAME_CLAIM = env("HITL_OIDC_USERNAME_CLAIM", "preferred_username")
HITL_OIDC_ROLE_CLAIM = env("HITL_OIDC_ROLE_CLAIM", "groups")
HITL_OIDC_ROLE_MAP = dict(
    item.split("=", 1) for item in env_list("HITL_OIDC_ROLE_MAP", []) if "=" in item
)
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("reviews.oidc.PortalOIDCBackend")

# --- Request limits -----------------------------------------------------------
# A batch of 1000 cases fits comfortably; anything larger is answered by a JSON 413
# (hitl_portal.middleware.BodySizeLimitMiddleware) before any parsing happens.
HITL_MAX_BODY_BYTES = env_int("HITL_MAX_BODY_BYTES", 8 * 1024 * 1024)
# The review loop: claim lease, the longest total hold through renewals (the workbench
# renews while the reviewer is active), and how long a reviewer may undo a decision.
HITL_LEASE_SECONDS = env_int("HITL_LEASE_SECONDS", 300)
HITL_LEASE_MAX_HOLD_SECONDS = env_int("HITL_LEASE_MAX_HOLD_SECONDS", 3600)
HITL_UNDO_SECONDS = env_int("HITL_UNDO_SECONDS", 120)
# Art. 86: days an officer has to answer an affected person's explanation request.
HITL_EXPLANATION_DEADLINE_DAYS = env_int("HITL_EXPLANATION_DEADLINE_DAYS", 30)
DATA_UPLOAD_MAX_MEMORY_SIZE = HITL_MAX_BODY_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10000

# --- Webhooks -------------------------------------------------------------------
# Callback URLs go to public addresses only (SSRF guard, reviews.services.webhook_guard);
# on-premises receivers are let through by CIDR (10.20.0.0/16) or host name (hooks.corp.example).
HITL_WEBHOOK_ALLOW = env_list("HITL_WEBHOOK_ALLOW", [])
try:
    parse_allow_list(HITL_WEBHOOK_ALLOW)  # a typo in a CIDR stops the start, not the first delivery
except AllowListError as _exc:
    raise ImproperlyConfigured(str(_exc)) from _exc

# --- REST framework ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Hashed, expiring tokens (django-rest-knox's table), token + user + role in one query.
        "hitl_portal.api.authentication.PortalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["hitl_portal.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "hitl_portal.api.pagination.IdCursorPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "hitl_portal.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        # Token endpoint: slows password guessing; per client address.
        "auth": env("HITL_THROTTLE_AUTH", "30/min"),
        # Per integration; generous so that no benchmark-rate integration is slowed.
        "integration": env("HITL_THROTTLE_INTEGRATION", "200000/min"),
    },
    # Behind N reverse proxies, trust N X-Forwarded-For hops (throttling by client address).
    "NUM_PROXIES": env_int("HITL_NUM_PROXIES", 0),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "HITL Governance Portal API",
    "DESCRIPTION": (
        "Human-in-the-loop oversight of AI systems: case ingestion and routing, review "
        "queue, audit trail, quality, KPIs and compliance. Contract: api-v1."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation also documents the errors the shared layers give (hitl_portal/api/schema.py).
    # The async long-poll view is no DRF view: its operation is added to the schema first, so the
    # shared error statuses are documented on it too.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "reviews.api.views.wait.add_wait_operation",
        "hitl_portal.api.schema.document_shared_errors",
    ],
    "ENUM_NAME_OVERRIDES": {
        "CaseStatusEnum": "reviews.models.CaseStatus",
        "BiasAuditStatusEnum": "fairness.models.AuditStatus",
        "ExplanationRequestStatusEnum": "compliance.models.ExplanationStatus",
    },
}

# --- Cache (throttling, short-lived figures) ------------------------------------
REDIS_URL = env("REDIS_URL")
# hitl_portal.asgi: threads per process serving the sync views (the /wait/ long-polls need none).
HITL_ASGI_THREADS = env_int("HITL_ASGI_THREADS", 16)
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Failed-login counters: in Redis when there is one (shared by every web process), else
# in the database (the embedded default's processes share no memory).
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler" if REDIS_URL else "axes.handlers.database.AxesDatabaseHandler"

# --- Celery -----------------------------------------------------------------------
HITL_EMBEDDED_BROKER = env("CELERY_BROKER_URL") is None
# Always a URL: the environment's, or the embedded broker's file set just below.
CELERY_BROKER_URL: str = env("CELERY_BROKER_URL") or ""
HITL_EMBEDDED_BROKER_FILE: Path | None = None
if HITL_EMBEDDED_BROKER:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # kombu's SQLAlchemy transport on a SQLite file: a real broker that needs no
    # server, so the worker and beat run beside the web server as in production.
    HITL_EMBEDDED_BROKER_FILE = VAR_DIR / "celery-broker.sqlite3"
    CELERY_BROKER_URL = f"sqla+sqlite:///{HITL_EMBEDDED_BROKER_FILE}"
    # kombu hands these options to SQLAlchemy's create_engine (a ``polling_interval``
    # here would break it): ``timeout`` is SQLite's busy timeout, so the web server,
    # the worker and beat wait for each other's writes instead of failing.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"connect_args": {"timeout": 30}}
# The longest hard time limit of any task (audit.verify_nightly): Redis must not hand an
# unacknowledged message (acks_late) to a second worker while the first may still run it.
HITL_LONGEST_TASK_TIME_LIMIT_S = 3300
# A request publishes on-commit tasks once, with a short connect timeout and no retry
# loop (hitl_portal/queueing.py): with the broker down, ingest stays fast and loses
# nothing, because beat and the sweepers pick the work up from the database.
CELERY_BROKER_CONNECTION_TIMEOUT = float(env("HITL_BROKER_CONNECT_TIMEOUT") or "1.0")
CELERY_TASK_PUBLISH_RETRY = False
if not HITL_EMBEDDED_BROKER:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # kombu's own reconnect loop when a publish finds no connection: none (fail at once).
        "max_retries": 0,
        "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
        "socket_timeout": 10.0,
        # Above the longest task's time limit, so a slow task is never redelivered while running;
        # a killed worker's bias audit is resumed sooner by fairness.resume_stale_audits.
        "visibility_timeout": env_int("HITL_BROKER_VISIBILITY_TIMEOUT", HITL_LONGEST_TASK_TIME_LIMIT_S + 900),
    }
    if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= HITL_LONGEST_TASK_TIME_LIMIT_S:
        raise ImproperlyConfigured(
            "HITL_BROKER_VISIBILITY_TIMEOUT must exceed the longest task time limit "
            f"({HITL_LONGEST_TASK_TIME_LIMIT_S} s)"
        )
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 360
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Unit tests run tasks inline; nothing else does (production and the embedded
# default always go through a real broker and worker).
CELERY_TASK_ALWAYS_EAGER = TESTING and not env_bool("HITL_REAL_CELERY")
CELERY_TASK_EAGER_PROPAGATES = True
# --- Behaviour: every tunable the services read, from the environment, in one place ------
# (README.md, "Environment variables", lists each with its default.) Code reads
# ``settings.HITL_...`` directly; tests change them with pytest-django's ``settings``.
# Review queue (lease, maximum hold and undo window: above, with the request limits)
HITL_IDEMPOTENCY_KEEP_HOURS = env_int("HITL_IDEMPOTENCY_KEEP_HOURS", 48)  # never under 24 (enforced in code)
# Webhooks (case decided / auto-accepted): per-attempt timeout, attempts, exponential backoff
HITL_WEBHOOK_TIMEOUT_SECONDS = env_float("HITL_WEBHOOK_TIMEOUT_SECONDS", 5.0)
HITL_WEBHOOK_MAX_ATTEMPTS = env_int("HITL_WEBHOOK_MAX_ATTEMPTS", 8)
HITL_WEBHOOK_BACKOFF_BASE_SECONDS = env_float("HITL_WEBHOOK_BACKOFF_BASE_SECONDS", 10.0)
HITL_WEBHOOK_BACKOFF_CAP_SECONDS = env_float("HITL_WEBHOOK_BACKOFF_CAP_SECONDS", 3600.0)
HITL_WEBHOOK_SWEEP_BATCH = env_int("HITL_WEBHOOK_SWEEP_BATCH", 100)
# Quality: gold accuracy, competence suspension, rubber-stamp flags, thresholds
HITL_GOLD_WINDOW = env_int("HITL_GOLD_WINDOW", 50)
HITL_COMPETENCE_WINDOW = env_int("HITL_COMPETENCE_WINDOW", 20)
HITL_COMPETENCE_MIN_ACCURACY = env_float("HITL_COMPETENCE_MIN_ACCURACY", 0.8)
HITL_REQUIRED_TRAINING_KINDS = tuple(env_list("HITL_REQUIRED_TRAINING_KINDS", ["ai_literacy"]))
HITL_RUBBER_STAMP_MIN_DECISIONS = env_int("HITL_RUBBER_STAMP_MIN_DECISIONS", 30)
HITL_RUBBER_STAMP_APPROVAL_RATE = env_float("HITL_RUBBER_STAMP_APPROVAL_RATE", 0.98)
HITL_RUBBER_STAMP_TIME_FLOOR_S = env_float("HITL_RUBBER_STAMP_TIME_FLOOR_S", 3.0)
HITL_QUALITY_PERIOD_DAYS = env_int("HITL_QUALITY_PERIOD_DAYS", 90)
HITL_THRESHOLD_MIN_GROUND_TRUTH = env_int("HITL_THRESHOLD_MIN_GROUND_TRUTH", 50)
HITL_THRESHOLD_TARGET_ERROR = env_float("HITL_THRESHOLD_TARGET_ERROR", 0.02)
# Fairness: smallest group reported, time slice of one bias-audit chunk
HITL_BIAS_MIN_GROUP_SIZE = env_int("HITL_BIAS_MIN_GROUP_SIZE", 30)
HITL_BIAS_AUDIT_CHUNK_SECONDS = env_int("HITL_BIAS_AUDIT_CHUNK_SECONDS", 86_400)
# Periods of beat's sweeps (seconds)
HITL_AUDIT_SEAL_SWEEP_SECONDS = env_float("HITL_AUDIT_SEAL_SWEEP_SECONDS", 1.0)
# Seal requests from the web processes (audit.services._request_seal): at most one leading and
# one trailing request per this many milliseconds for all processes together. Every seal
# task has a fixed cost (the Celery round trip, the advisory lock, reading the head), so a
# shorter interval buys a shorter seal lag with CPU: at 100 ms the sealer cost 0.93 ms of
# CPU per single-case ingest, most of the request's budget; lag is bounded by about the
# interval plus the sealing time either way (docs/PERFORMANCE.md, item 1).
HITL_AUDIT_SEAL_REQUEST_INTERVAL_MS = env_int("HITL_AUDIT_SEAL_REQUEST_INTERVAL_MS", 250)
HITL_LEASE_SWEEP_SECONDS = env_float("HITL_LEASE_SWEEP_SECONDS", 5.0)
HITL_SLA_SWEEP_SECONDS = env_float("HITL_SLA_SWEEP_SECONDS", 15.0)
HITL_WEBHOOK_SWEEP_SECONDS = env_float("HITL_WEBHOOK_SWEEP_SECONDS", 5.0)
# django-simple-history's own switch (history rows on every save); only benchmarks turn it off.
SIMPLE_HISTORY_ENABLED = env_bool("SIMPLE_HISTORY_ENABLED", True)

# Signed checkpoints of the audit chain: every this many seconds (beat), or sooner once
# this many events were sealed since the last one (the sealer asks for one). Together
# they bound the unwitnessed tail a database superuser could cut unnoticed.
HITL_AUDIT_CHECKPOINT_SECONDS = env_int("HITL_AUDIT_CHECKPOINT_SECONDS", 60)
HITL_AUDIT_CHECKPOINT_EVENTS = env_int("HITL_AUDIT_CHECKPOINT_EVENTS", 1000)
# Chain verification (audit.selectors.verify_chain) on PostgreSQL splits a walk of at
# least this many events at signed checkpoints and walks the segments on this many
# worker processes (audit.chain_workers; 0: one per core); 1 keeps every walk in the calling process.
HITL_AUDIT_VERIFY_WORKERS = env_int("HITL_AUDIT_VERIFY_WORKERS", 0)
HITL_AUDIT_VERIFY_PARALLEL_MIN_EVENTS = env_int("HITL_AUDIT_VERIFY_PARALLEL_MIN_EVENTS", 1_000_000)
CELERY_BEAT_SCHEDULE = {
    "audit-seal": {"task": "audit.seal_pending", "schedule": HITL_AUDIT_SEAL_SWEEP_SECONDS},
    "portal-heartbeat": {"task": "hitl_portal.heartbeat", "schedule": 15.0},
    "portal-deliver-notifications": {"task": "hitl_portal.deliver_notifications", "schedule": 30.0},
    "reviews-training-expiry-alerts": {
        "task": "reviews.training_expiry_alerts", "schedule": crontab(minute=15, hour=6),
    },
    "reviews-expire-leases": {"task": "reviews.expire_leases", "schedule": HITL_LEASE_SWEEP_SECONDS},
    "reviews-apply-sla-breaches": {"task": "reviews.apply_sla_breaches", "schedule": HITL_SLA_SWEEP_SECONDS},
    "reviews-sweep-webhooks": {"task": "reviews.sweep_webhooks", "schedule": HITL_WEBHOOK_SWEEP_SECONDS},
    "reviews-purge-idempotency-keys": {"task": "reviews.purge_idempotency_keys", "schedule": 3600.0},
    "reviews-purge-expired-tokens": {"task": "reviews.purge_expired_tokens", "schedule": 3600.0},
    "reviews-alert-stuck-cases": {"task": "reviews.alert_stuck_cases", "schedule": 60.0},
    # Before the reviewer-quality snapshot (00:30), which counts from these copies.
    "reviews-fill-decision-copies": {"task": "reviews.fill_decision_copies", "schedule": crontab(hour=0, minute=20)},
    "audit-checkpoint": {"task": "audit.checkpoint", "schedule": HITL_AUDIT_CHECKPOINT_SECONDS},
    "audit-verify-nightly": {"task": "audit.verify_nightly", "schedule": crontab(hour=2, minute=0)},
    "audit-purge-expired": {"task": "audit.purge_expired", "schedule": crontab(hour=3, minute=0)},
    "compliance-explanation-deadline-reminders": {
        "task": "compliance.explanation_deadline_reminders", "schedule": 3600.0,
    },
    "compliance-incident-overdue-alerts": {"task": "compliance.incident_overdue_alerts", "schedule": 3600.0},
    "quality-snapshot-reviewer-quality": {
        "task": "quality.snapshot_reviewer_quality", "schedule": crontab(hour=0, minute=30)
    },
    "quality-enforce-competence": {"task": "quality.enforce_competence", "schedule": 3600.0},
    "fairness-nightly-bias-audits": {
        "task": "fairness.schedule_nightly_audits", "schedule": crontab(hour=1, minute=30)
    },
    "fairness-resume-stale-audits": {"task": "fairness.resume_stale_audits", "schedule": 300.0},
    "dashboard-refresh-rollups": {"task": "dashboard.refresh_rollups", "schedule": 60.0},
    # After the nightly rollup rebuild: yesterday is finished and its figures are settled.
    "dashboard-run-monitoring": {"task": "dashboard.run_monitoring", "schedule": crontab(hour=4, minute=0)},
    "dashboard-rebuild-rollups": {
        "task": "dashboard.refresh_rollups", "schedule": crontab(hour=3, minute=30), "kwargs": {"full": True}
    },
}
if HITL_EMBEDDED_BROKER:
    # kombu's SQL transport keeps every delivered message (marked invisible); without
    # pruning, the broker table and every poll of it would grow without bound.
    CELERY_BEAT_SCHEDULE["portal-prune-embedded-broker"] = {
        "task": "hitl_portal.prune_embedded_broker",
        "schedule": 600.0,
    }

# --- Audit chain ------------------------------------------------------------------
# Ed25519 key that signs chain checkpoints (PEM, PKCS#8). Production passes it in;
# the embedded default keeps a generated key in var/ (never committed).
HITL_AUDIT_SIGNING_KEY = env("HITL_AUDIT_SIGNING_KEY")
# Public keys (PEM or raw hex/base64) of rotated-out signing keys: old checkpoints stay verifiable.
HITL_AUDIT_RETIRED_PUBLIC_KEYS = env_list("HITL_AUDIT_RETIRED_PUBLIC_KEYS", [])
HITL_AUDIT_SIGNING_KEY_FILE = Path(env("HITL_AUDIT_SIGNING_KEY_FILE", str(VAR_DIR / "audit-signing-key.pem")))
# Where every signed checkpoint is also written, outside the database (audit/witness.py):
# file:///dir (append-only JSON Lines), syslog: / syslog://host:port, https://… or none.
# Verification compares the chain with it. Point it at storage the database's
# superuser cannot rewrite; the embedded default keeps it beside the SQLite files.
HITL_AUDIT_WITNESS = env("HITL_AUDIT_WITNESS", f"file://{(VAR_DIR / 'audit-witness').resolve()}")
HITL_AUDIT_WITNESS_TOKEN = env("HITL_AUDIT_WITNESS_TOKEN")  # bearer token for an https:// witness
# Seal right after commit; beat sweeps up whatever a contended sealer left behind.
# "inline" seals in the committing process (SQLite: one writer anyway; embedded
# broker); "task" hands it to a worker so the request path skips a second commit.
HITL_AUDIT_SEAL_ON_COMMIT = env_bool("HITL_AUDIT_SEAL_ON_COMMIT", True)
HITL_AUDIT_SEAL_MODE = env("HITL_AUDIT_SEAL_MODE", "task" if IS_POSTGRES and not HITL_EMBEDDED_BROKER else "inline")
if HITL_AUDIT_SEAL_MODE not in {"inline", "task"}:
    raise ImproperlyConfigured("HITL_AUDIT_SEAL_MODE must be 'inline' or 'task'")

# --- Security -----------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading is a one-way commitment for the whole registrable domain (removal from
    # browsers' lists takes months): an operator opts in, the portal never does by default.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # check --deploy warns (W021) whenever preload is off; off is the deliberate default here.
        SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "security.W021"]

# Content-Security-Policy (django-csp): everything from our own origin, no inline script or
# style (templates load static files only), no plugins, no framing. Images also allow data:
# and blob: URIs (case content and attachments rendered in the workbench).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # Case content (reviews.content): images and media from data: URIs, attachments and the
        # operator's allow-listed origins only; pdf.js renders to a canvas from a same-origin worker.
        "img-src": ["'self'", "data:", "blob:", *HITL_MEDIA_ALLOWED_ORIGINS],
        "media-src": ["'self'", "data:", "blob:", *HITL_MEDIA_ALLOWED_ORIGINS],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# Permissions-Policy: powerful browser features the portal never uses are off for everyone.
HITL_PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer", "autoplay", "camera", "display-capture", "geolocation", "gyroscope",
        "magnetometer", "microphone", "midi", "payment", "publickey-credentials-get", "usb",
        "screen-wake-lock", "serial", "xr-spatial-tracking",
    )
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # WeasyPrint logs every font and CSS decision at INFO while rendering a dossier.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
