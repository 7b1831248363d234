"""Which conversation a new message belongs to, and keeping its inbox summary current."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Greatest

from constituents.models import Constituent
from messages.models import Channel, Conversation, ConversationStatus, Direction, Message

PREVIEW_LENGTH = 160


@transaction.atomic
def conversation_for_inbound(*, constituent: Constituent, at: datetime) -> Conversation:
    """The constituent's unclosed thread; else one closed within the reopen window, reopened; else a new one.

    Locks the returned row. Concurrent first messages from one number race on the partial unique constraint
    "one unclosed conversation per constituent": the loser re-reads the winner's thread.
    """
    current = _unclosed(constituent)
    if current is not None:
        return current
    window = timedelta(hours=settings.CONVERSATION_REOPEN_WINDOW_HOURS)
    recent = (
        Conversation.objects.select_for_update()
        .filter(constituent=constituent, status=ConversationStatus.CLOSED, closed_at__gte=at - window)
        .order_by("-closed_at")
        .first()
    )
    try:
        with transaction.atomic():
            if recent is not None:
                recent.status = ConversationStatus.OPEN
                recent.closed_at = None
                recent.save(update_fields=["status", "closed_at"])
                return recent
            return Conversation.objects.create(
                office_id=constituent.office_id, constituent=constituent, last_activity_at=at, created_at=at
            )
    except IntegrityError:
        winner = _unclosed(constituent)
        if winner is None:  # the constraint that failed was not the race we expected
            raise
        return winner


def _unclosed(constituent: Constituent) -> Conversation | None:
    return (
        Conversation.objects.select_for_update()
        .filter(constituent=constituent)
        .exclude(status=ConversationStatus.CLOSED)
        .first()
    )


def preview_for(message: Message) -> str:
    if message.body:
        text = " ".join(message.body.split())
    else:
        text = {
            Channel.MMS: "[picture]",
            Channel.CALL: "[call]",
            Channel.VOICEMAIL: "[voicemail]",
        }.get(Channel(message.channel), "")
    return text[:PREVIEW_LENGTH]


def conversation_touch(*, conversation: Conversation, message: Message) -> None:
    """Fold a new message into its conversation's inbox summary (activity time, preview, unread)."""
    fields: dict[str, object] = {
        "last_activity_at": Greatest("last_activity_at", message.created_at),
        "last_message_preview": preview_for(message),
        "last_message_channel": message.channel,
    }
    if message.direction == Direction.INBOUND:
        fields["last_inbound_at"] = message.created_at
        # A constituent writing again wakes a snoozed or pending thread.
        if conversation.status in (ConversationStatus.SNOOZED, ConversationStatus.PENDING):
            fields["status"] = ConversationStatus.OPEN
            fields["snoozed_until"] = None
    elif (
        message.direction == Direction.OUTBOUND
        and message.sent_by_id
        and conversation.first_response_at is None
    ):
        fields["first_response_at"] = message.created_at
    Conversation.objects.filter(pk=conversation.pk).update(**fields)
