"""Behaviour that depends on the real queue: a real Celery worker on real Redis, and Redis going down.

Nothing is lost when Redis is down at commit time: the webhook still answers, the row records the pending
work, and the sweeper re-enqueues it once Redis is back.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from civicdesk import devstack
from civicdesk.celery import app as celery_app
from messages.models import Message, MessageStatus
from messages.services.inbound_queue import NUDGE_KEY
from messages.services.sweeper import sweep
from tests.messages.twilio.webhook import SMS_PATH, fixture

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@contextmanager
def real_worker(*, purge: bool = True) -> Iterator[None]:
    if purge:  # drop tasks other tests left for ids that no longer exist
        celery_app.control.purge()
        cache.delete(NUDGE_KEY)  # a purged drain's nudge would hold off the next one for a few seconds
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"
    ):
        yield


@contextmanager
def private_redis() -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A Redis of this test's own (on a temp unix socket), to stop without hurting other tests."""
    folder = Path(tempfile.mkdtemp(prefix="cd-redis-"))
    sock = folder / "r.sock"

    def start() -> None:
        subprocess.run(
            [
                str(devstack.redis_server_binary()),
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--pidfile",
                str(folder / "r.pid"),
                "--dir",
                str(folder),
            ],
            check=True,
        )
        assert wait_for(lambda: devstack._redis_answers(sock), 5)

    def stop() -> None:
        pid = int((folder / "r.pid").read_text())
        subprocess.run(["kill", str(pid)], check=False)
        assert wait_for(lambda: not devstack._redis_answers(sock), 5)

    start()
    try:
        yield f"redis+socket://{sock}", start, stop
    finally:
        if devstack._redis_answers(sock):
            stop()


@contextmanager
def broker(url: str) -> Iterator[None]:
    """Point the Celery app at another broker for the duration."""
    app: Any = celery_app  # swaps Celery's cached connection pools, which its type stubs keep private
    previous = (app.conf.broker_url, app._pool, app.amqp._producer_pool)
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.pool.force_close_all()  # the private broker's connections only
        app.conf.broker_url, app._pool, app.amqp._producer_pool = previous


@pytest.fixture
def acking_office(phone_number: Any) -> Any:
    office = phone_number.office
    office.sms_auto_ack_text = "Thanks for writing to the office."
    office.save()
    return office


def test_text_is_processed_and_acknowledged_by_a_real_worker(
    acking_office: Any, post_signed: Any, locmem_outbox: list[Any]
) -> None:
    with real_worker():
        assert post_signed(SMS_PATH, fixture("sms_received__basic")).status_code == 200
        inbound = Message.objects.get(direction="inbound")
        assert wait_for(lambda: Message.objects.filter(pk=inbound.pk, processed_at__isnull=False).exists())
        assert wait_for(
            lambda: (
                Message.objects.filter(direction="outbound", status=MessageStatus.SENDING)
                .exclude(provider_sid=None)
                .exists()
            )
        )
    assert [m.body for m in locmem_outbox] == ["Thanks for writing to the office."]


def test_redis_down_at_commit_loses_nothing_and_sweeper_recovers(
    acking_office: Any, post_signed: Any, locmem_outbox: list[Any]
) -> None:
    with private_redis() as (url, start, stop), broker(url):
        stop()
        started = time.monotonic()
        response = post_signed(SMS_PATH, fixture("sms_received__basic"))
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert elapsed < 2, f"webhook took {elapsed:.1f}s with Redis down"
        inbound = Message.objects.get(direction="inbound")
        assert inbound.processed_at is None  # the pending work is recorded in PostgreSQL

        # Redis is down: a sweep cannot enqueue either, and must not crash.
        sweep(now=timezone.now() + timedelta(minutes=2))

        start()
        report = sweep(now=timezone.now() + timedelta(minutes=2))
        assert report.inbound_requeued == 1
        with real_worker(purge=False):
            assert wait_for(
                lambda: Message.objects.filter(pk=inbound.pk, processed_at__isnull=False).exists()
            )
            assert wait_for(lambda: len(locmem_outbox) == 1)
    assert [m.body for m in locmem_outbox] == ["Thanks for writing to the office."]


def test_sweeper_ignores_fresh_work_and_requeues_stale_work(acking_office: Any, post_signed: Any) -> None:
    celery_app.control.purge()
    post_signed(SMS_PATH, fixture("sms_received__basic"))
    assert sweep().inbound_requeued == 0  # younger than SWEEPER_STALE_AFTER_SECONDS
    later = timezone.now() + timedelta(seconds=settings.SWEEPER_STALE_AFTER_SECONDS + 1)
    assert sweep(now=later).inbound_requeued == 1
    celery_app.control.purge()
