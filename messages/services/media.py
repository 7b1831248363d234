"""Downloading MMS media from Twilio into our storage, safely (see messages.twilio.media)."""

from __future__ import annotations

import mimetypes

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from messages.models import Media, MediaStatus
from messages.twilio.media import MediaNotReady, MediaRejected, MediaTemporaryError, fetch_media
from offices.selectors import twilio_auth_token_for_account

# What staff may receive. Everything not an image is served as an attachment (see views.media_file).
ALLOWED_CONTENT_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/heic",
        "audio/mpeg",
        "audio/mp4",
        "audio/ogg",
        "audio/amr",
        "audio/wav",
        "video/mp4",
        "video/3gpp",
        "video/quicktime",
        "text/vcard",
        "text/x-vcard",
        "text/plain",
        "application/pdf",
    }
)
MAX_ATTEMPTS = 5


class MediaRetry(Exception):
    """Not ready yet, or a transient error: the task retries shortly."""


def media_download(*, media_id: int) -> str:
    """Fetch one pending media item and store it. Network I/O; idempotent. Returns the final status."""
    media = Media.objects.select_related("message").filter(pk=media_id).first()
    if media is None or media.status != MediaStatus.PENDING:
        return "nothing-to-do"
    account_sid = media.message.details.get("account_sid") or settings.TWILIO_ACCOUNT_SID
    auth_token = twilio_auth_token_for_account(account_sid=account_sid) or settings.TWILIO_AUTH_TOKEN
    Media.objects.filter(pk=media.pk).update(attempts=media.attempts + 1)
    try:
        fetched = fetch_media(
            media.provider_url,
            account_sid=account_sid,
            auth_token=auth_token,
            max_bytes=settings.MEDIA_MAX_BYTES,
            allowed_content_types=ALLOWED_CONTENT_TYPES,
        )
    except MediaRejected as exc:
        return _finish(media, MediaStatus.REJECTED, error=str(exc))
    except (MediaNotReady, MediaTemporaryError) as exc:
        if media.attempts + 1 >= MAX_ATTEMPTS:
            return _finish(media, MediaStatus.FAILED, error=f"gave up after {MAX_ATTEMPTS} tries: {exc}")
        raise MediaRetry(str(exc)) from exc
    extension = mimetypes.guess_extension(fetched.content_type) or ".bin"
    with transaction.atomic():
        locked = Media.objects.select_for_update().get(pk=media.pk)
        if locked.status != MediaStatus.PENDING:
            return locked.status
        locked.file.save(f"media{extension}", ContentFile(fetched.content), save=False)
        locked.content_type = fetched.content_type
        locked.size = len(fetched.content)
        locked.status = MediaStatus.STORED
        locked.error = ""
        locked.save()
    return MediaStatus.STORED


def _finish(media: Media, status: MediaStatus, *, error: str) -> str:
    Media.objects.filter(pk=media.pk, status=MediaStatus.PENDING).update(status=status, error=error[:300])
    return status
