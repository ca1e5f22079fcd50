"""Production refuses to start half-configured and passes Django's deployment checks.

Each case runs in a fresh interpreter: settings are read once per process, so the
only honest way to test another environment is to start another process.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(60),
    "ALLOWED_HOSTS": "portal.example.org",
    # ``check`` opens no database connection, so this need not exist.
    "DATABASE_URL": "postgres://portal@127.0.0.1:5432/portal",
}
# Variables of the surrounding run that must not leak into the child's configuration.
SCRUBBED = (
    "DJANGO_ENV", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL",
    "DJANGO_DEBUG", "HITL_TESTING", "CSRF_TRUSTED_ORIGINS", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_PRELOAD",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # set by tests/conftest.py for Playwright; never in deployment
)


def run_python(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    child_env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    child_env.update(env, DJANGO_SETTINGS_MODULE="hitl_portal.settings", HITL_VAR_DIR=str(tmp_path / "var"))
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"])
def test_production_refuses_to_start_without(missing, tmp_path):
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != missing}

    result = run_python(["-c", "import django; django.setup()"], env, tmp_path)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr.splitlines()[-1]


def test_production_starts_with_all_three(tmp_path):
    result = run_python(
        ["-c", "import django; django.setup(); from django.conf import settings; "
               "print(settings.DEBUG, settings.SESSION_COOKIE_SECURE, settings.DATABASES['default']['ENGINE'])"],
        {**PRODUCTION_ENV, "DJANGO_DEBUG": "1"},
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    # DJANGO_DEBUG cannot switch debug pages on in production.
    assert result.stdout.split() == ["False", "True", "django.db.backends.postgresql"]


def test_check_deploy_passes_in_production_with_no_warnings(tmp_path):
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_development_default_fails_the_deployment_checks(tmp_path):
    """The same check does bite: only production mode turns on HTTPS, HSTS and secure cookies."""
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], {}, tmp_path)

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


@pytest.mark.parametrize(("env", "expected"), [({}, "False"), ({"SECURE_HSTS_PRELOAD": "true"}, "True")])
def test_hsts_preload_is_off_unless_the_operator_opts_in(env, expected, tmp_path):
    """Preloading commits the whole domain to HTTPS for months: never the default."""
    result = run_python(
        ["-c", "import django; django.setup(); from django.conf import settings; "
               "print(settings.SECURE_HSTS_SECONDS > 0, settings.SECURE_HSTS_PRELOAD)"],
        {**PRODUCTION_ENV, **env},
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", expected]
