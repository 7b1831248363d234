"""One conversation and its timeline."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from messages.models import Conversation, ConversationEvent, Media, Message
from offices.models import Office


def thread_get(*, office: Office, pk: int) -> Conversation | None:
    return (
        Conversation.objects.select_related("constituent", "assignee", "queue")
        .prefetch_related("tags")
        .filter(office=office, pk=pk)
        .first()
    )


def thread_messages(*, office: Office, conversation: Conversation) -> QuerySet[Message]:
    return (
        Message.objects.filter(office=office, conversation=conversation)
        .select_related("sent_by")
        .prefetch_related(Prefetch("media", queryset=Media.objects.order_by("index")))
        .order_by("created_at", "id")
    )


def thread_events(*, office: Office, conversation: Conversation) -> QuerySet[ConversationEvent]:
    return ConversationEvent.objects.filter(office=office, conversation=conversation).select_related("actor")


def message_get(*, office: Office, pk: int) -> Message | None:
    return Message.objects.filter(office=office, pk=pk).select_related("conversation").first()


def media_get(*, office: Office, pk: int) -> Media | None:
    return Media.objects.filter(office=office, pk=pk).first()
