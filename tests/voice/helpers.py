"""Voice webhook test helpers: load a voice fixture, fill in the test's ids, post it signed (Zulip style)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.test import Client
from django.urls import reverse

from messages.twilio.signatures import sign

# Recorded Twilio voice webhooks, one file per case: route, our query string, expected status, the form.
FIXTURES = Path(__file__).parent / "fixtures"

CALL_SID = "CA" + "a" * 32
RECORDING_SID = "RE" + "b" * 32
TRANSCRIPTION_SID = "TR" + "c" * 32
CALLER = "+14155550123"
HOTLINE = "+14155550100"


def voice_fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("voice_*__*.json"))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def request_for(name: str, ids: Mapping[str, object], **overrides: str) -> tuple[str, dict[str, str], int]:
    """(path with query, form params, expected status) of a fixture; ``{placeholders}`` come from ``ids``."""
    data = load(name)
    query = {key: str(value).format(**ids) for key, value in data["query"].items()}
    path = reverse(f"twilio:{data['route']}")
    if query:
        path += "?" + urlencode(sorted(query.items()))
    params = {**data["params"], **overrides}
    return path, params, int(data["expect"])


def client_transport(
    client: Client | None = None,
) -> Callable[[str, Sequence[tuple[str, str]]], tuple[int, str]]:
    """A demo.calls transport over Django's test client, signed like Twilio."""
    http = client or Client()

    def post(path: str, params: Sequence[tuple[str, str]]) -> tuple[int, str]:
        items = list(params)
        signature = sign(settings.PUBLIC_BASE_URL + path, items, settings.TWILIO_AUTH_TOKEN)
        response = http.post(
            path,
            data=urlencode(items),
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": signature},
        )
        return response.status_code, response.content.decode()

    return post
