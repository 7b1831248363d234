"""The dead-letter guard on a real Celery worker (in this process, solo pool) and real Redis and PostgreSQL.

A redelivery of a message is the same task id and ``retries`` published again; publishing one id several
times makes those redeliveries here without killing anything. Killed workers are in test_poison_workers.py.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client, override_settings
from django.utils import timezone

from civicdesk.celery import app as celery_app
from common.deadletters import DeadLetteringTask
from common.models import DeadLetter
from messages.models import Channel, Direction, Message, MessageStatus
from messages.services.sweeper import sweep
from tests import factories
from tests.common import poison_tasks
from tests.faults import TcpProxy
from voice.services import voice_sweep
from voice.services.voicemail import Audio

MAX = 3


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def starts(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@contextmanager
def solo_worker() -> Iterator[None]:
    celery_app.control.purge()
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"
    ):
        yield


@contextmanager
def records_of(name: str, level: int) -> Iterator[list[logging.LogRecord]]:
    """Log records of one logger, straight from it (the worker's logging setup bypasses caplog)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level)
    logger = logging.getLogger(name)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


@contextmanager
def counter_redis_at(location: str) -> Iterator[None]:
    """Point the default cache (where starts are counted) at another Redis, for this block only."""
    caches = {"default": {**settings.CACHES["default"], "LOCATION": location}}
    with override_settings(CACHES=caches):  # common.queueing's client follows the cache settings
        yield


def test_every_acks_late_task_is_requeued_on_a_lost_worker_and_dead_letter_guarded() -> None:
    celery_app.loader.import_default_modules()  # autodiscovery: every app's tasks module
    tasks = dict(celery_app.tasks)
    acks_late = sorted(name for name, task in tasks.items() if task.acks_late)
    # The app's own acks_late tasks are all there: the check below is not vacuous.
    assert {
        "messages.tasks.message_deliver",
        "messages.tasks.inbound_drain",
        "voice.tasks.voicemail_transcribe",
    } <= set(acks_late)
    unguarded = [name for name in acks_late if not isinstance(tasks[name], DeadLetteringTask)]
    dropping = [name for name in acks_late if tasks[name].reject_on_worker_lost is not True]
    assert unguarded == [], "acks_late tasks without the dead-letter guard"
    assert dropping == [], "acks_late tasks whose message a lost worker would drop"


def test_start_counts_outlast_the_visibility_timeout() -> None:
    """A message whose whole worker died comes back after the visibility timeout: its count must still be
    there, or a poison task that kills whole workers would never reach the limit."""
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    outlast = visibility * (settings.CELERY_TASK_MAX_DELIVERIES + 1)
    assert settings.CELERY_TASK_DELIVERY_COUNT_SECONDS > outlast  # noqa: SIM300 - the setting is the subject


@pytest.mark.django_db(transaction=True)
@override_settings(CELERY_TASK_MAX_DELIVERIES=MAX)
def test_a_message_started_more_than_max_times_is_dead_lettered_and_its_body_not_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "starts"
    task_id = str(uuid.uuid4())
    with solo_worker(), records_of("common.deadletters", logging.ERROR) as records:
        for _ in range(MAX + 2):  # the same message delivered MAX + 2 times
            poison_tasks.record_start.apply_async(args=(str(path),), task_id=task_id)
        assert wait_for(lambda: DeadLetter.objects.filter(task_id=task_id, deliveries=MAX + 2).exists())
        # Another message of the same task still runs.
        poison_tasks.record_start.apply_async(args=(str(path),))
        assert wait_for(lambda: starts(path) == MAX + 1)
    assert starts(path) == MAX + 1  # MAX starts of the repeated message, one of the other
    letter = DeadLetter.objects.get()
    assert (letter.task_name, letter.task_id, letter.retries) == ("tests.poison.record_start", task_id, 0)
    assert (letter.args, letter.kwargs, letter.deliveries) == ([str(path)], {}, MAX + 2)
    assert letter.first_seen_at <= letter.last_seen_at
    assert letter.last_error == ""  # nothing was lost: no worker noted an error
    logged = [r for r in records if r.levelno == logging.ERROR and task_id in r.getMessage()]
    assert len(logged) == 2, "one ERROR line per start that was not run"
    assert "tests.poison.record_start" in logged[0].getMessage()


@pytest.mark.django_db(transaction=True)  # the worker in this process closes the test's connection
@override_settings(CELERY_TASK_MAX_DELIVERIES=MAX)
def test_a_retry_is_a_new_message_with_its_own_count(tmp_path: Path) -> None:
    path = tmp_path / "starts"
    task_id = str(uuid.uuid4())
    with solo_worker():
        for retries in (0, 1):
            for _ in range(MAX):
                redelivery: dict[str, Any] = {"task_id": task_id, "retries": retries}
                poison_tasks.record_start.apply_async(args=(str(path),), **redelivery)
        assert wait_for(lambda: starts(path) == 2 * MAX)
    assert not DeadLetter.objects.exists()


def test_a_task_called_as_a_function_is_not_counted(tmp_path: Path) -> None:
    path = tmp_path / "starts"
    with counter_redis_at("unix:///nonexistent/counter.sock"):
        for _ in range(MAX + 1):
            poison_tasks.record_start(str(path))
    assert starts(path) == MAX + 1


@pytest.mark.django_db(transaction=True)  # the worker in this process closes the test's connection
@override_settings(CELERY_TASK_MAX_DELIVERIES=MAX)
def test_counter_redis_refusing_runs_every_start_and_logs(tmp_path: Path) -> None:
    path = tmp_path / "starts"
    task_id = str(uuid.uuid4())
    with (
        counter_redis_at("unix:///nonexistent/counter.sock"),
        solo_worker(),
        records_of("common.deadletters", logging.WARNING) as records,
    ):
        for _ in range(MAX + 1):
            poison_tasks.record_start.apply_async(args=(str(path),), task_id=task_id)
        assert wait_for(lambda: starts(path) == MAX + 1)
    assert not DeadLetter.objects.exists()
    assert any("running it uncounted" in r.getMessage() for r in records)


def test_counter_redis_hanging_delays_a_start_by_its_socket_timeout_only(tmp_path: Path) -> None:
    path = tmp_path / "starts"
    redis_socket = settings.REDIS_URL.removeprefix("unix://").split("?")[0]
    with (
        TcpProxy(upstream=Path(redis_socket)) as proxy,
        counter_redis_at(f"redis://127.0.0.1:{proxy.port}/1"),
    ):
        proxy.hang()
        with solo_worker():
            started = time.monotonic()
            poison_tasks.record_start.apply_async(args=(str(path),))
            assert wait_for(lambda: starts(path) == 1, timeout=5)
            elapsed = time.monotonic() - started
    assert elapsed < settings.CACHES["default"]["OPTIONS"]["socket_timeout"] * 4


# --- The admin page: operators only, read-only --------------------------------------------------------------
CHANGELIST = "/admin/common/deadletter/"


@pytest.fixture
def letter(db: None) -> DeadLetter:
    now = timezone.now()
    return DeadLetter.objects.create(
        task_name="messages.tasks.message_process",
        task_id="poison-task-id",
        args=[41],
        deliveries=MAX + 1,
        first_seen_at=now,
        last_seen_at=now,
        last_error="WorkerLostError: Worker exited prematurely: signal 9 (SIGKILL) Job: 3.",
    )


def test_superuser_sees_dead_letters_read_only(letter: DeadLetter) -> None:
    operator = factories.UserFactory.create(username="operator", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200
    assert b"poison-task-id" in listing.content
    detail = client.get(f"{CHANGELIST}{letter.pk}/change/")
    assert detail.status_code == 200
    assert b"signal 9 (SIGKILL)" in detail.content
    assert b'name="_save"' not in detail.content
    assert client.post(f"{CHANGELIST}{letter.pk}/change/", {"deliveries": 1}).status_code == 403
    assert client.post(f"{CHANGELIST}{letter.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    assert DeadLetter.objects.get().deliveries == MAX + 1


def test_office_admin_gets_403_for_dead_letters_even_with_the_view_permission(letter: DeadLetter) -> None:
    office = factories.OfficeFactory.create(slug="alpha")
    office_admin = factories.MembershipFactory.create(
        office=office, role="admin", user__username="office-admin", user__is_staff=True
    ).user
    office_admin.user_permissions.add(Permission.objects.get(codename="view_deadletter"))
    client = Client()
    client.force_login(office_admin)
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(f"{CHANGELIST}{letter.pk}/change/").status_code == 403
    assert b"Dead letter" not in client.get("/admin/").content


def test_office_staff_is_sent_to_the_login_for_dead_letters(letter: DeadLetter) -> None:
    office = factories.OfficeFactory.create(slug="alpha")
    staff = factories.MembershipFactory.create(office=office, role="staff", user__username="staffer").user
    client = Client()
    client.force_login(staff)
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- The sweeper does not start again, at every sweep, what was just dead-lettered --------------------------
@pytest.mark.django_db
def test_sweeper_does_not_requeue_a_send_dead_lettered_within_the_count_window() -> None:

    celery_app.control.purge()
    long_ago = timezone.now() - timedelta(hours=1)
    poison, healthy, forgiven = (
        factories.MessageFactory.create(
            direction=Direction.OUTBOUND, status=MessageStatus.QUEUED, provider_sid=None, processed_at=None
        )
        for _ in range(3)
    )
    Message.objects.filter(pk__in=[poison.pk, healthy.pk, forgiven.pk]).update(status_updated_at=long_ago)
    window = timedelta(seconds=settings.CELERY_TASK_DELIVERY_COUNT_SECONDS)
    now = timezone.now()
    for message, seen in (
        (poison, now - timedelta(minutes=1)),
        (forgiven, now - window - timedelta(minutes=1)),
    ):
        DeadLetter.objects.create(
            task_name="messages.tasks.message_deliver",
            task_id=str(uuid.uuid4()),
            args=[message.pk],
            deliveries=MAX + 1,
            first_seen_at=seen,
            last_seen_at=seen,
        )
    try:
        report = sweep(now=now)
    finally:
        celery_app.control.purge()
    assert report.outbound_requeued == 2  # the healthy send, and the one dead-lettered longer ago than that


@pytest.mark.django_db
def test_voice_sweeper_does_not_requeue_a_voicemail_download_dead_lettered_within_the_count_window() -> None:

    celery_app.control.purge()
    now = timezone.now()
    poison, healthy = (
        factories.MessageFactory.create(
            channel=Channel.VOICEMAIL,
            details={"audio": Audio.PENDING, "recording_url": "https://api.twilio.com/x/RE1"},
        )
        for _ in range(2)
    )
    Message.objects.filter(pk__in=[poison.pk, healthy.pk]).update(created_at=now - timedelta(minutes=5))
    DeadLetter.objects.create(
        task_name="voice.tasks.voicemail_audio_download",
        task_id=str(uuid.uuid4()),
        args=[poison.pk],
        deliveries=MAX + 1,
        first_seen_at=now,
        last_seen_at=now,
    )
    try:
        report = voice_sweep(now=now)
    finally:
        celery_app.control.purge()
    assert report.downloads_requeued == 1  # the healthy voicemail only
