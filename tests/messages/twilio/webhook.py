"""Shared webhook test helpers: load a fixture by event name, post it signed (Zulip style)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
SMS_PATH = "/webhooks/twilio/sms/"
STATUS_PATH = "/webhooks/twilio/sms/status/"


def fixture(name: str, **overrides: str) -> dict[str, str]:
    params: dict[str, str] = json.loads((FIXTURES / f"{name}.json").read_text())["params"]
    params.update(overrides)
    return params


def fixture_names(prefix: str) -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob(f"{prefix}__*.json"))


def body(response: Any) -> str:
    return response.content.decode()
