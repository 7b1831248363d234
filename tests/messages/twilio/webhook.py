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
    return str(response.content, "utf-8")


def post_signed_in_parallel(path: str, requests: list[dict[str, str]], *, threads: int) -> list[int]:
    """POST each form, signed as Twilio would sign it, from ``threads`` threads at once; the status codes.

    For races: each thread has its own client and database connection, closed when its request is done.
    Needs a ``transaction=True`` test, so that the threads see each other's commits.
    """
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlencode

    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from messages.twilio.signatures import sign

    def post(params: dict[str, str]) -> int:
        items = list(params.items())
        signature = sign(settings.PUBLIC_BASE_URL + path, items, settings.TWILIO_AUTH_TOKEN)
        try:
            response = Client().post(
                path,
                urlencode(items),
                content_type="application/x-www-form-urlencoded",
                headers={"X-Twilio-Signature": signature},
            )
            return int(response.status_code)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(post, requests))
