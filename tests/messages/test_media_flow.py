"""MMS end to end: webhook stores pending media; the worker downloads it from (fake) Twilio; staff of that
office, and only they, can fetch it, images inline and anything else as a nosniff attachment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from messages.models import Media, MediaStatus, Message
from messages.services.media import MediaRetry, media_download
from messages.services.processing import inbound_process
from tests import factories
from tests.fakes.fake_twilio import FakeTwilio, Scripted
from tests.messages.twilio.webhook import SMS_PATH, fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeTwilio]:
    with FakeTwilio(
        accounts={django_settings.TWILIO_ACCOUNT_SID: django_settings.TWILIO_AUTH_TOKEN}
    ) as server:
        settings.TWILIO_API_BASE_URL = server.base_url
        yield server


def _mms(post_signed: Any, urls: list[tuple[str, str]]) -> Message:
    sid = "MM" + "c" * 32
    params = fixture("sms_received__basic", MessageSid=sid, SmsSid=sid, NumMedia=str(len(urls)))
    for i, (url, ctype) in enumerate(urls):
        params[f"MediaUrl{i}"] = url
        params[f"MediaContentType{i}"] = ctype
    assert post_signed(SMS_PATH, params).status_code == 200
    message = Message.objects.get(provider_sid=sid)
    inbound_process(message_id=message.pk)
    return message


def test_image_is_downloaded_and_served_inline_to_office_staff_only(
    phone_number: Any, post_signed: Any, fake: FakeTwilio, staff_client: Client
) -> None:
    url = fake.add_media(b"\x89PNG\r\n\x1a\nfake-image", "image/png")
    message = _mms(post_signed, [(url, "image/png")])
    media = message.media.get()
    assert media_download(media_id=media.pk) == MediaStatus.STORED
    media.refresh_from_db()
    assert media.size == len(b"\x89PNG\r\n\x1a\nfake-image")
    assert media.content_type == "image/png"

    response = staff_client.get(f"/o/{phone_number.office.slug}/media/{media.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "attachment" not in response.get("Content-Disposition", "")
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")  # type: ignore[attr-defined]  # FileResponse

    stranger = Client()
    stranger.force_login(factories.MembershipFactory.create(role="staff").user)  # a member of another office
    assert stranger.get(f"/o/{phone_number.office.slug}/media/{media.pk}/").status_code == 404
    assert Client().get(f"/o/{phone_number.office.slug}/media/{media.pk}/").status_code == 302  # to login


def test_non_image_is_served_as_a_nosniff_attachment(
    phone_number: Any, post_signed: Any, fake: FakeTwilio, staff_client: Client
) -> None:
    url = fake.add_media(b"<html><script>alert(1)</script>", "text/plain")
    media = _mms(post_signed, [(url, "text/plain")]).media.get()
    media_download(media_id=media.pk)
    response = staff_client.get(f"/o/{phone_number.office.slug}/media/{media.pk}/")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_media_not_ready_asks_for_a_retry_and_the_next_attempt_stores(
    phone_number: Any, post_signed: Any, fake: FakeTwilio
) -> None:
    url = fake.add_media(b"GIF89a", "image/gif")
    media = _mms(post_signed, [(url, "image/gif")]).media.get()
    fake.script(Scripted.server_error(404), route="media")
    with pytest.raises(MediaRetry):
        media_download(media_id=media.pk)
    assert Media.objects.get(pk=media.pk).status == MediaStatus.PENDING
    assert media_download(media_id=media.pk) == MediaStatus.STORED


def test_media_at_a_private_address_is_rejected_without_a_request(
    phone_number: Any, post_signed: Any, fake: FakeTwilio
) -> None:
    message = _mms(post_signed, [("https://169.254.169.254/latest/meta-data/", "image/jpeg")])
    media = message.media.get()
    assert media_download(media_id=media.pk) == MediaStatus.REJECTED
    assert fake.requests == []


def test_disallowed_type_is_rejected_and_never_stored(
    phone_number: Any, post_signed: Any, fake: FakeTwilio
) -> None:
    url = fake.add_media(b"MZ\x90\x00", "application/x-msdownload")
    media = _mms(post_signed, [(url, "application/x-msdownload")]).media.get()
    assert media_download(media_id=media.pk) == MediaStatus.REJECTED
    media.refresh_from_db()
    assert not media.file
