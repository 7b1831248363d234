"""Production settings refuse to start without secrets and pass check --deploy; /healthz is true and fast."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "civicdesk.settings.production",
    "SECRET_KEY": "x7$Kq!v2Lr9#Wm4@Tz8&Pb1^Nc6*Hd3(Jf5)Gs0-Ya+Ue=Io~Rk",
    "ALLOWED_HOSTS": "civic.example.org",
    "PUBLIC_BASE_URL": "https://civic.example.org",
    "DATABASE_URL": "postgresql://civicdesk@db.internal:5432/civicdesk",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "prod-token",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; a deployment never would.
    dropped = {*PRODUCTION_ENV, "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,  # the tests assert the exit code and read stderr themselves
    )


def test_production_settings_pass_check_deploy_with_no_warnings() -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL"]
)
def test_production_refuses_to_start_without_a_secret(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert f"{missing} must be set in production" in result.stderr


@pytest.mark.django_db
def test_healthz_is_200_when_database_and_redis_answer(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.django_db
def test_healthz_is_503_with_reason_within_a_second_when_redis_is_down(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    settings.REDIS_URL = f"unix://{tmp_path}/nothing-here.sock"
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 1.0
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error")


@pytest.mark.django_db
def test_healthz_is_503_within_a_second_when_the_database_hangs(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from civicdesk import health

    monkeypatch.setattr(health, "_check_database", lambda params: time.sleep(3))
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 1.0
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "timed out"


@pytest.mark.django_db
def test_healthz_reports_a_database_that_refuses_connections(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connection

    params = connection.get_connection_params()
    monkeypatch.setattr(
        connection, "get_connection_params", lambda: {**params, "host": "/nonexistent-dir", "port": 1}
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("error")
