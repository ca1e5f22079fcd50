"""One env-driven configuration for every deployment of the portal.

Nothing here differs by file: the embedded default (no configuration: SQLite and
an embedded Celery broker) and production (``DJANGO_ENV=production``:
PostgreSQL, Redis, gunicorn) are the same module reading different variables.
Production refuses to start without the settings it cannot guess.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Runtime state of the embedded default (SQLite files, embedded broker, collected
# static files) lives here; the folder is git-ignored.
VAR_DIR = Path(os.environ.get("HITL_VAR_DIR", BASE_DIR / "var"))


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


def env_list(name: str, default: list[str]) -> list[str]:
    value = env(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DJANGO_ENV = env("DJANGO_ENV", "development")
PRODUCTION = DJANGO_ENV == "production"
TESTING = "pytest" in sys.modules or env_bool("HITL_TESTING")

if PRODUCTION:
    missing = [name for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL") if not env(name)]
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
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_celery_beat",
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
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "hitl_portal.middleware.ActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
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
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
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

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
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
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": _STATIC_BACKEND},
}
# Tests (and DEBUG) serve static files straight from the apps, without collectstatic.
WHITENOISE_USE_FINDERS = DEBUG or TESTING
WHITENOISE_AUTOREFRESH = DEBUG or TESTING
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"

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

# --- Request limits -----------------------------------------------------------
# A batch of 1000 cases fits comfortably; anything larger is answered by a JSON 413
# (hitl_portal.middleware.BodySizeLimitMiddleware) before any parsing happens.
HITL_MAX_BODY_BYTES = env_int("HITL_MAX_BODY_BYTES", 8 * 1024 * 1024)
# The review loop: claim lease, the longest total hold through renewals (the workbench
# renews while the reviewer is active), and how long a reviewer may undo a decision.
HITL_LEASE_SECONDS = env_int("HITL_LEASE_SECONDS", 300)
HITL_LEASE_MAX_HOLD_SECONDS = env_int("HITL_LEASE_MAX_HOLD_SECONDS", 3600)
HITL_UNDO_SECONDS = env_int("HITL_UNDO_SECONDS", 120)
DATA_UPLOAD_MAX_MEMORY_SIZE = HITL_MAX_BODY_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10000

# --- REST framework ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["hitl_portal.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
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
    "ENUM_NAME_OVERRIDES": {
        "CaseStatusEnum": "reviews.models.CaseStatus",
        "BiasAuditStatusEnum": "fairness.models.AuditStatus",
    },
}

# --- Cache (throttling, short-lived figures) ------------------------------------
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -----------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
HITL_EMBEDDED_BROKER = CELERY_BROKER_URL is None
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
    CELERY_BROKER_TRANSPORT_OPTIONS = {"connect_args": {"timeout": 30}}
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
CELERY_BEAT_SCHEDULE = {
    "audit-seal": {"task": "audit.seal_pending", "schedule": 1.0},
    "portal-heartbeat": {"task": "hitl_portal.heartbeat", "schedule": 15.0},
    "portal-deliver-notifications": {"task": "hitl_portal.deliver_notifications", "schedule": 30.0},
    "reviews-training-expiry-alerts": {
        "task": "reviews.training_expiry_alerts", "schedule": crontab(minute=15, hour=6),
    },
    "reviews-expire-leases": {"task": "reviews.expire_leases", "schedule": 5.0},
    "reviews-apply-sla-breaches": {"task": "reviews.apply_sla_breaches", "schedule": 15.0},
    "reviews-sweep-webhooks": {"task": "reviews.sweep_webhooks", "schedule": 5.0},
    "reviews-purge-idempotency-keys": {"task": "reviews.purge_idempotency_keys", "schedule": 3600.0},
    "reviews-alert-stuck-cases": {"task": "reviews.alert_stuck_cases", "schedule": 60.0},
    "audit-checkpoint": {"task": "audit.checkpoint", "schedule": 600.0},
    "audit-verify-nightly": {"task": "audit.verify_nightly", "schedule": crontab(hour=2, minute=0)},
    "audit-purge-expired": {"task": "audit.purge_expired", "schedule": crontab(hour=3, minute=0)},
    "compliance-incident-overdue-alerts": {"task": "compliance.incident_overdue_alerts", "schedule": 3600.0},
    "quality-snapshot-reviewer-quality": {
        "task": "quality.snapshot_reviewer_quality", "schedule": crontab(hour=0, minute=30)
    },
    "quality-enforce-competence": {"task": "quality.enforce_competence", "schedule": 3600.0},
    "fairness-nightly-bias-audits": {
        "task": "fairness.schedule_nightly_audits", "schedule": crontab(hour=1, minute=30)
    },
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
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

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
