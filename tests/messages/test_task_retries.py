"""Retries and giving up, through a real Celery worker on real Redis, with the real twilio SDK against the
local fake Twilio API: sends on a 429 or 5xx storm, a storm that clears, and MMS media that is not ready yet.

The backoff bases are made tiny through their settings (DELIVERY_RETRY_BACKOFF_BASE_SECONDS,
DOWNLOAD_RETRY_BASE_SECONDS); the schedule itself is the production one.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from common.queueing import enqueue
from messages import tasks
from messages.models import Media, MediaStatus, Message, MessageStatus
from messages.services.media import MAX_ATTEMPTS as MEDIA_MAX_ATTEMPTS
from messages.services.replies import reply_send
from tests import factories
from tests.fakes.fake_twilio import ROUTE_CDN, ROUTE_CREATE_MESSAGE, ROUTE_MEDIA, FakeTwilio, Scripted
from tests.messages.twilio.webhook import SMS_PATH, fixture
from tests.task_ledger import TaskLedger

pytestmark = pytest.mark.django_db(transaction=True)

BASE_SECONDS = 0.01  # the tests' backoff base: retry n waits between 5 ms * 2**n and 10 ms * 2**n
# A countdown is read from the ETA header as the retry is published: less than the true countdown by the time
# between Celery computing the ETA and the signal reading it, a fraction of a millisecond on a quiet machine
# and up to tens of milliseconds on a loaded one (the in-process worker shares the test's interpreter).
MEASURE_TOLERANCE_SECONDS = 0.03
RATE_LIMITED = Scripted.twilio_error(429, 20429, "Too Many Requests")
UNAVAILABLE = Scripted.server_error(503)


@pytest.fixture
def fake(twilio_api: FakeTwilio, settings: Any) -> FakeTwilio:
    settings.SMS_BACKEND = "twilio"
    settings.DELIVERY_RETRY_BACKOFF_BASE_SECONDS = BASE_SECONDS
    settings.DOWNLOAD_RETRY_BASE_SECONDS = BASE_SECONDS
    return twilio_api


def _reply(phone_number: Any, staff_user: Any) -> Message:
    """A staff reply; its commit publishes tasks.message_deliver to the real queue."""
    constituent = factories.ConstituentFactory.create(office=phone_number.office, phone="+14155550123")
    conversation = factories.ConversationFactory.create(constituent=constituent)
    return reply_send(conversation=conversation, body="We received your message.", sent_by=staff_user)


def _assert_backed_off(countdowns: list[float]) -> None:
    """Retry n (from 0) waited between half and all of base * 2**n: each wait at least the one before."""
    for retries, countdown in enumerate(countdowns):
        ceiling = BASE_SECONDS * 2**retries
        assert ceiling / 2 - MEASURE_TOLERANCE_SECONDS <= countdown <= ceiling, (retries, countdowns)
    for earlier, later in itertools.pairwise(countdowns):
        assert later >= earlier - MEASURE_TOLERANCE_SECONDS, countdowns


@pytest.mark.parametrize("storm", [RATE_LIMITED, UNAVAILABLE], ids=["429", "503"])
def test_a_send_backs_off_through_every_retry_then_gives_up_failed_with_the_reason(
    fake: FakeTwilio, ledger: TaskLedger, phone_number: Any, staff_user: Any, storm: Scripted
) -> None:
    # More errors than tries: a task that never gave up would keep posting.
    fake.script(*[storm] * (tasks.MAX_DELIVERY_RETRIES + 3), route=ROUTE_CREATE_MESSAGE)
    message = _reply(phone_number, staff_user)
    ledger.wait_idle()

    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    tries = 1 + tasks.MAX_DELIVERY_RETRIES
    assert len(fake.requests_for(ROUTE_CREATE_MESSAGE)) == tries
    assert ledger.runs("message_deliver") == ["RETRY"] * tasks.MAX_DELIVERY_RETRIES + ["SUCCESS"]
    countdowns = ledger.retry_countdowns("message_deliver")
    assert len(countdowns) == tasks.MAX_DELIVERY_RETRIES
    _assert_backed_off(countdowns)
    message.refresh_from_db()
    assert message.provider_sid is None
    assert fake.messages == {}
    cause = (
        "Twilio is rate limiting requests"
        if storm is RATE_LIMITED
        else "Twilio is temporarily unavailable (HTTP 503)"
    )
    assert (
        message.error_message
        == f"Twilio was unavailable after {tries} tries: {cause}. Not sent; try again later."
    )


def test_a_storm_that_clears_sends_once_and_stores_the_sid(
    fake: FakeTwilio, ledger: TaskLedger, phone_number: Any, staff_user: Any
) -> None:
    failures = 3
    fake.script(RATE_LIMITED, UNAVAILABLE, RATE_LIMITED, route=ROUTE_CREATE_MESSAGE)  # then 201
    message = _reply(phone_number, staff_user)
    ledger.wait_idle()

    assert len(fake.requests_for(ROUTE_CREATE_MESSAGE)) == failures + 1
    (sid,) = fake.messages
    message.refresh_from_db()
    assert (message.provider_sid, message.status, message.error_message) == (sid, MessageStatus.SENDING, "")
    assert message.send_attempts == failures + 1
    _assert_backed_off(ledger.retry_countdowns("message_deliver"))
    assert ledger.runs("message_deliver") == ["RETRY"] * failures + ["SUCCESS"]


def _mms(post_signed: Any, url: str) -> Message:
    """An MMS through the webhook; the worker's inbound drain then publishes the media download."""
    sid = "MM" + "d" * 32
    params = fixture("sms_received__basic", MessageSid=sid, SmsSid=sid, NumMedia="1")
    params["MediaUrl0"], params["MediaContentType0"] = url, "image/gif"
    assert post_signed(SMS_PATH, params).status_code == 200
    return Message.objects.get(provider_sid=sid)


def test_media_not_ready_is_retried_by_the_worker_then_stored(
    fake: FakeTwilio, ledger: TaskLedger, phone_number: Any, post_signed: Any
) -> None:
    url = fake.add_media(b"GIF89a-picture", "image/gif")
    not_ready = 2
    fake.script(*[Scripted.server_error(404)] * not_ready, route=ROUTE_MEDIA)
    message = _mms(post_signed, url)
    ledger.wait_idle()

    media = message.media.get()
    assert (media.status, media.attempts, media.size) == (
        MediaStatus.STORED,
        not_ready + 1,
        len(b"GIF89a-picture"),
    )
    assert len(fake.requests_for(ROUTE_MEDIA)) == not_ready + 1
    assert len(fake.requests_for(ROUTE_CDN)) == 1
    assert ledger.runs("media_download") == ["RETRY"] * not_ready + ["SUCCESS"]
    expected = [tasks.media_retry_countdown(retries) for retries in range(not_ready)]
    assert ledger.retry_countdowns("media_download") == pytest.approx(expected, abs=MEASURE_TOLERANCE_SECONDS)


def test_media_never_ready_gives_up_after_max_attempts_and_is_marked_failed(
    fake: FakeTwilio, ledger: TaskLedger, phone_number: Any, post_signed: Any
) -> None:
    url = fake.add_media(b"GIF89a", "image/gif")
    fake.script(*[Scripted.server_error(404)] * (MEDIA_MAX_ATTEMPTS + 3), route=ROUTE_MEDIA)
    message = _mms(post_signed, url)
    ledger.wait_idle()

    media = message.media.get()
    assert media.status == MediaStatus.FAILED
    assert media.error.startswith(f"gave up after {MEDIA_MAX_ATTEMPTS} tries: ")
    assert "404" in media.error
    assert len(fake.requests_for(ROUTE_MEDIA)) == MEDIA_MAX_ATTEMPTS
    assert fake.requests_for(ROUTE_CDN) == []
    # The service gave up (the last run ended normally), not Celery's max_retries (a FAILURE, media pending).
    assert ledger.runs("media_download") == ["RETRY"] * (MEDIA_MAX_ATTEMPTS - 1) + ["SUCCESS"]


def test_a_media_download_enqueued_again_continues_the_count_and_gives_up(
    fake: FakeTwilio, ledger: TaskLedger, phone_number: Any
) -> None:
    """The sweeper re-enqueues pending media as a new task (retries 0); the row's count of tries decides."""
    url = fake.add_media(b"GIF89a", "image/gif")
    fake.script(*[Scripted.server_error(404)] * (MEDIA_MAX_ATTEMPTS + 3), route=ROUTE_MEDIA)
    message = factories.MessageFactory.create(
        conversation__constituent__office=phone_number.office, body="", details={}
    )
    media = Media.objects.create(
        office=message.office, message=message, index=0, provider_url=url, attempts=MEDIA_MAX_ATTEMPTS - 1
    )  # an earlier task's tries
    assert enqueue(tasks.media_download, media.pk)  # as the sweeper does
    ledger.wait_idle()

    media.refresh_from_db()
    assert media.status == MediaStatus.FAILED
    assert len(fake.requests_for(ROUTE_MEDIA)) == 1
    assert ledger.runs("media_download") == ["SUCCESS"]
