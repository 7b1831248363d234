"""The rule: a webhook request opens no network connection except to PostgreSQL and Redis (the nudge after
commit), each bounded by a timeout; never to Twilio, a media host or any other address. Media, replies
and every other call out happen in the worker.

The tests are transactional, so the request's transaction really commits and its on_commit callbacks (the
nudge) run inside the request, as in production; ``tests.netguard.NetworkGuard`` watches every connect.
"""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction

from common import queueing
from messages.models import Media, Message
from messages.services.inbound_queue import NUDGE_KEY, inbound_nudge_on_commit
from tests.messages.twilio.webhook import SMS_PATH, fixture
from tests.netguard import NetworkGuard, engine_addresses

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fresh_redis_clients() -> None:
    """No pooled connection for the nudge's client: its SET NX after commit connects, under the guard."""
    queueing._client_for.cache_clear()
    cache.delete(NUDGE_KEY)  # a key left by another test would skip the nudge


def test_sms_webhook_connects_only_to_redis_after_commit_and_to_nothing_else(
    phone_number: Any, post_signed: Any, fresh_redis_clients: None
) -> None:
    with NetworkGuard(allowed=engine_addresses()) as guard:
        response = post_signed(SMS_PATH, fixture("sms_received__mms_two_images"))
    assert response.status_code == 200
    assert guard.refused == []
    # The nudge ran after commit, inside the request, and was watched: it reached Redis and only Redis.
    assert guard.allowed, "no connection at all: the on_commit nudge did not run under the guard"
    assert set(guard.allowed) <= engine_addresses()
    assert Media.objects.count() == 2  # recorded; downloaded later, by the worker
    assert Message.objects.get().processed_at is None


@pytest.fixture
def listener() -> tuple[str, int, list[int]]:
    """Some other host: a TCP listener that counts the connections it accepts."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[int] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    host, port = server.getsockname()[:2]
    return host, port, accepted


def test_guard_catches_a_webhook_whose_on_commit_calls_another_host(
    phone_number: Any,
    post_signed: Any,
    fresh_redis_clients: None,
    listener: tuple[str, int, list[int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Break the rule on purpose: the intake's after-commit step also makes an HTTP request."""
    host, port, accepted = listener

    def nudge_and_call_out() -> None:
        inbound_nudge_on_commit()
        transaction.on_commit(lambda: urllib.request.urlopen(f"http://{host}:{port}/", timeout=1))

    monkeypatch.setattr("messages.services.intake.inbound_nudge_on_commit", nudge_and_call_out)
    with (
        NetworkGuard(allowed=engine_addresses()) as guard,
        pytest.raises(urllib.error.URLError, match="neither PostgreSQL nor Redis"),
    ):
        post_signed(SMS_PATH, fixture("sms_received__basic"))
    assert guard.refused == [(host, port)]
    assert accepted == []  # the other host never heard from the request
    assert Message.objects.count() == 1  # committed before the call out
