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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hitl_portal.settings import PRODUCTION_REQUIRED

ROOT = Path(__file__).resolve().parents[2]
SIGNING_KEY_PEM = Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(60),
    "ALLOWED_HOSTS": "portal.example.org",
    # ``check`` opens no database or broker connection, so these need not exist.
    "DATABASE_URL": "postgres://portal@127.0.0.1:5432/portal",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "HITL_AUDIT_SIGNING_KEY": SIGNING_KEY_PEM,
}
# Variables of the surrounding run that must not leak into the child's configuration.
SCRUBBED = (
    "DJANGO_ENV", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL",
    "DJANGO_DEBUG", "HITL_TESTING", "CSRF_TRUSTED_ORIGINS", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_PRELOAD",
    "DJANGO_ALLOW_ASYNC_UNSAFE",  # set by tests/conftest.py for Playwright; never in deployment
    "HITL_AUDIT_SIGNING_KEY", "HITL_AUDIT_SIGNING_KEY_FILE", "DB_PREPARE_THRESHOLD", "DB_PLAN_CACHE_MODE",
    "DB_HOT_PATH_PLAN_CACHE_MODE",
)


def run_python(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    child_env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    child_env.update(env, DJANGO_SETTINGS_MODULE="hitl_portal.settings", HITL_VAR_DIR=str(tmp_path / "var"))
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=120, check=False
    )


def test_every_required_variable_is_in_the_production_env_of_these_tests():
    assert set(PRODUCTION_REQUIRED) == set(PRODUCTION_ENV) - {"DJANGO_ENV"}


@pytest.mark.parametrize("missing", PRODUCTION_REQUIRED)
def test_production_refuses_to_start_without(missing, tmp_path):
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != missing}

    result = run_python(["-c", "import django; django.setup()"], env, tmp_path)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert missing in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("command", [["manage.py", "check"], ["-m", "celery", "-A", "hitl_portal", "report"]])
def test_production_without_the_signing_key_exits_at_start_naming_it(command, tmp_path):
    """Before: it booted and failed at the first checkpoint or export. Web, worker and beat all stop at start."""
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "HITL_AUDIT_SIGNING_KEY"}

    result = run_python(command, env, tmp_path)

    assert result.returncode != 0
    assert "HITL_AUDIT_SIGNING_KEY" in result.stderr


def test_production_accepts_the_signing_key_as_a_file_and_refuses_a_missing_file(tmp_path):
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "HITL_AUDIT_SIGNING_KEY"}
    key_file = tmp_path / "signing-key.pem"
    key_file.write_text(SIGNING_KEY_PEM)
    code = "import django; django.setup(); from audit.signing import public_key; print(len(public_key().raw))"

    ok = run_python(["-c", code], {**env, "HITL_AUDIT_SIGNING_KEY_FILE": str(key_file)}, tmp_path)
    missing = run_python(["-c", code], {**env, "HITL_AUDIT_SIGNING_KEY_FILE": str(tmp_path / "nope.pem")}, tmp_path)

    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["32"]
    assert missing.returncode != 0
    assert "HITL_AUDIT_SIGNING_KEY_FILE" in missing.stderr.splitlines()[-1]


def test_behaviour_settings_come_from_the_environment(tmp_path):
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.HITL_LEASE_SECONDS, s.HITL_WEBHOOK_MAX_ATTEMPTS, s.HITL_COMPETENCE_MIN_ACCURACY, "
            "s.HITL_REQUIRED_TRAINING_KINDS, s.CELERY_BEAT_SCHEDULE['reviews-apply-sla-breaches']['schedule'])")

    defaults = run_python(["-c", code], {}, tmp_path)
    changed = run_python(["-c", code], {"HITL_LEASE_SECONDS": "900", "HITL_WEBHOOK_MAX_ATTEMPTS": "3",
                                        "HITL_COMPETENCE_MIN_ACCURACY": "0.9", "HITL_SLA_SWEEP_SECONDS": "30",
                                        "HITL_REQUIRED_TRAINING_KINDS": "ai_literacy,gdpr"}, tmp_path)

    assert defaults.stdout.split() == ["300", "8", "0.8", "('ai_literacy',)", "15.0"]
    assert changed.stdout.split() == ["900", "3", "0.9", "('ai_literacy',", "'gdpr')", "30.0"]


def test_production_starts_with_everything_required(tmp_path):
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


PRINT_DB_OPTIONS = ("from django.conf import settings; o = settings.DATABASES['default']['OPTIONS']; "
                    "print(o.get('prepare_threshold'), '|', o.get('options'), '|', "
                    "getattr(settings, 'HITL_HOT_PATH_PLAN_CACHE_MODE', '-'))")


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "5 | -c plan_cache_mode=force_custom_plan | auto"),
    # Nothing prepared (a pooler in transaction mode): no session SET, so no switch.
    ({"DB_PREPARE_THRESHOLD": "off"}, "None | -c plan_cache_mode=force_custom_plan | force_custom_plan"),
    ({"DB_PREPARE_THRESHOLD": "2", "DB_PLAN_CACHE_MODE": "auto"}, "2 | -c plan_cache_mode=auto | auto"),
    ({"DB_HOT_PATH_PLAN_CACHE_MODE": "force_custom_plan"},
     "5 | -c plan_cache_mode=force_custom_plan | force_custom_plan"),
])
def test_postgresql_prepares_repeated_statements_and_keeps_custom_plans_by_default(env, expected, tmp_path):
    result = run_python(["-c", f"import django; django.setup(); {PRINT_DB_OPTIONS}"],
                        {"DATABASE_URL": "postgres://portal@127.0.0.1:5432/portal", **env}, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


@pytest.mark.parametrize("variable", ["DB_PLAN_CACHE_MODE", "DB_HOT_PATH_PLAN_CACHE_MODE"])
def test_an_unknown_plan_cache_mode_stops_the_start_naming_the_variable(variable, tmp_path):
    result = run_python(["-c", "import django; django.setup()"],
                        {"DATABASE_URL": "postgres://portal@127.0.0.1:5432/portal", variable: "fast"},
                        tmp_path)

    assert result.returncode != 0
    assert variable in result.stderr and "'fast'" in result.stderr
