"""TWILIO_API_BASE_URL points the Twilio client, and the account's credentials, at another host: a test hook.

Only the test settings define it. Production and local settings refuse to start when the environment sets
it, so one stray variable cannot send Twilio credentials elsewhere; without it production imports and has no
such setting (the code reads it with a default).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings

from messages.twilio import client
from tests.civicdesk.test_settings_and_health import PRODUCTION_ENV, REPO

STRAY_URL = "http://127.0.0.1:8765"
PRINT_OVERRIDE = (
    "import importlib, sys; module = importlib.import_module(sys.argv[1]); "
    "print(repr(getattr(module, 'TWILIO_API_BASE_URL', 'absent')))"
)


def import_settings(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dropped = {*PRODUCTION_ENV, "TWILIO_API_BASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "-c", PRINT_OVERRIDE, module],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,  # the tests assert the exit code and read stderr themselves
    )


@pytest.mark.parametrize("module", ["civicdesk.settings.production", "civicdesk.settings.local"])
def test_settings_refuse_to_start_with_twilio_api_base_url_in_the_environment(module: str) -> None:
    result = import_settings(module, {**PRODUCTION_ENV, "TWILIO_API_BASE_URL": STRAY_URL})
    assert result.returncode != 0, result.stdout
    assert "django.core.exceptions.ImproperlyConfigured: TWILIO_API_BASE_URL is set in the environment" in (
        result.stderr
    )
    assert "exists only in the test settings" in result.stderr


def test_production_settings_without_it_import_and_define_no_twilio_host_override() -> None:
    result = import_settings("civicdesk.settings.production", PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "'absent'"


def test_only_the_test_settings_define_the_hook_and_empty_means_twilios_real_api() -> None:
    assert settings.TWILIO_API_BASE_URL == ""
    assert client.api_base_url() == ""
