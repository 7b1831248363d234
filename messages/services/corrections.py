"""Corrections to what a message says, made after the fact: never silent, never lost.

A message is a record of what was said, and the admin cannot edit it (``common.admin.RecordAdmin``). When
its text must go (a constituent sent a social security number, say), ``message_redact`` replaces the body
and records who did it, when and why, in one transaction:

- ``MessageCorrection``: who, when, why, the text now shown, and the original text, kept for the office's
  records-retention duties (never shown in the inbox; in the admin, to superusers only);
- the message's ``details["redaction"]``: who, when and why, which the thread shows on the message itself;
- a ``ConversationEvent`` (kind ``redacted``), so an open thread's live poll shows it too;
- the inbox preview, if it shows the redacted text; the search document follows the body (PostgreSQL
  computes it), so a search no longer finds the message by its old words.

The caller decides who may redact (the admin: superusers and the office's admins); this service makes sure
the message is the office's.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from messages.models import (
    Channel,
    ConversationEvent,
    CorrectionKind,
    Direction,
    EventKind,
    Message,
    MessageCorrection,
)
from messages.services.threading import conversation_preview_refresh, preview_text
from offices.models import Office

REDACTED_TEXT = "[redacted]"
MAX_REASON_LENGTH = 500
MAX_REPLACEMENT_LENGTH = 200
# A call or voicemail keeps its words in the recording too: blanking the transcript would not remove them.
REDACTABLE_CHANNELS = frozenset({Channel.SMS, Channel.MMS, Channel.NOTE})


class CorrectionRejected(ValueError):
    """The correction cannot be made as asked; the message says why, for the person who asked."""


def redaction_refusal(message: Message) -> str | None:
    """Why ``message`` cannot be redacted, or None if it can (the admin offers the button only then)."""
    if message.channel not in REDACTABLE_CHANNELS:
        return "A call or voicemail cannot be redacted here: its recording holds the words."
    if not message.body:
        return "This message has no text to redact."
    if message.direction == Direction.INBOUND and message.processed_at is None:
        # Triage and the auto-reply still have to read what the constituent wrote.
        return "This message is still being processed. Try again in a minute."
    return None


@transaction.atomic
def message_redact(
    *,
    office: Office,
    message_id: int,
    by: AbstractBaseUser,
    reason: str,
    replacement: str = REDACTED_TEXT,
) -> MessageCorrection:
    """Replace the text of the office's message ``message_id`` with ``replacement``, recording why.

    Raises ``Message.DoesNotExist`` if the office has no such message (another office's message included)
    and ``CorrectionRejected`` for a request that cannot be carried out; either way nothing is written.
    Idempotent: a message already redacted is left as it is, and its redaction is returned.
    """
    reason = " ".join(reason.split())
    replacement = replacement.strip() or REDACTED_TEXT
    if not reason:
        raise CorrectionRejected("Give the reason for the redaction.")
    if len(reason) > MAX_REASON_LENGTH:
        raise CorrectionRejected(f"Keep the reason to {MAX_REASON_LENGTH} characters.")
    if len(replacement) > MAX_REPLACEMENT_LENGTH:
        raise CorrectionRejected(f"Keep the replacement text to {MAX_REPLACEMENT_LENGTH} characters.")

    # Locked, so two redactions of one message queue up and the second finds the first.
    message = Message.objects.select_for_update().filter(office=office, pk=message_id).first()
    if message is None:
        raise Message.DoesNotExist("No such message.")
    done = MessageCorrection.objects.filter(message=message, kind=CorrectionKind.REDACTION).first()
    if done is not None:
        return done
    refusal = redaction_refusal(message)
    if refusal is not None:
        raise CorrectionRejected(refusal)

    now = timezone.now()
    username = by.get_username()
    original = message.body
    correction = MessageCorrection.objects.create(
        office=office,
        message=message,
        kind=CorrectionKind.REDACTION,
        by_id=by.pk,
        by_username=username,
        reason=reason,
        original_body=original,
        replacement=replacement,
        created_at=now,
    )
    message.body = replacement
    message.details = {
        **message.details,
        "redaction": {"by": username, "at": now.isoformat(), "reason": reason},
    }
    message.save(update_fields=["body", "details"])
    # The inbox row shows the text of its latest message; if that is this message, its text goes too.
    conversation_preview_refresh(
        conversation_id=message.conversation_id,
        at=message.created_at,
        channel=Channel(message.channel),
        preview=preview_text(replacement, message.channel),
    )
    ConversationEvent.objects.create(
        office=office,
        conversation_id=message.conversation_id,
        actor_id=by.pk,
        kind=EventKind.REDACTED,
        data={"message_id": message.pk, "reason": reason},
        created_at=now,
    )
    return correction
