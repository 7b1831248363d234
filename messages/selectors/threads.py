"""One conversation and its timeline: messages of every channel, notes and triage events, in order."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from messages.models import Conversation, ConversationEvent, Media, Message, Tag
from offices.models import Office

OTHER_CONVERSATIONS_SHOWN = 10


def thread_get(*, office: Office, pk: int) -> Conversation | None:
    return (
        Conversation.objects.select_related("constituent", "assignee", "queue")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
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
    return (
        ConversationEvent.objects.filter(office=office, conversation=conversation)
        .select_related("actor")
        .order_by("created_at", "id")
    )


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """A message (any channel, including internal notes) or a triage event, placed in time."""

    at: datetime
    message: Message | None = None
    event: ConversationEvent | None = None

    @property
    def dom_id(self) -> str:
        if self.message is not None:
            return f"item-m{self.message.pk}"
        return f"item-e{self.event.pk}"  # type: ignore[union-attr]  # an item without a message has an event


def _merge(messages: list[Message], events: list[ConversationEvent]) -> list[TimelineItem]:
    items = [TimelineItem(at=m.created_at, message=m) for m in messages]
    items += [TimelineItem(at=e.created_at, event=e) for e in events]
    # Messages before events at the same instant: a reply and the status change it caused read naturally.
    items.sort(key=lambda item: (item.at, 0 if item.message is not None else 1))
    return items


@dataclass(frozen=True, slots=True)
class Timeline:
    items: list[TimelineItem]
    last_message_id: int
    last_event_id: int


def thread_timeline(*, office: Office, conversation: Conversation) -> Timeline:
    """Three queries: messages, their media, events."""
    messages = list(thread_messages(office=office, conversation=conversation))
    events = list(thread_events(office=office, conversation=conversation))
    return Timeline(
        items=_merge(messages, events),
        last_message_id=max((m.pk for m in messages), default=0),
        last_event_id=max((e.pk for e in events), default=0),
    )


@dataclass(frozen=True, slots=True)
class TimelineUpdate:
    new_items: list[TimelineItem]
    # Messages already shown whose delivery status changed since the last poll.
    updated_items: list[TimelineItem]
    last_message_id: int
    last_event_id: int


def thread_timeline_since(
    *,
    office: Office,
    conversation: Conversation,
    after_message_id: int,
    after_event_id: int,
    since: datetime | None,
) -> TimelineUpdate:
    """What the live-update poll adds to an open conversation: new messages and events, changed statuses."""
    messages = thread_messages(office=office, conversation=conversation)
    new_messages = list(messages.filter(pk__gt=after_message_id))
    updated = list(messages.filter(pk__lte=after_message_id, status_updated_at__gt=since)) if since else []
    new_events = list(thread_events(office=office, conversation=conversation).filter(pk__gt=after_event_id))
    return TimelineUpdate(
        new_items=_merge(new_messages, new_events),
        updated_items=[TimelineItem(at=m.created_at, message=m) for m in updated],
        last_message_id=max((m.pk for m in new_messages), default=after_message_id),
        last_event_id=max((e.pk for e in new_events), default=after_event_id),
    )


def thread_state_signature(conversation: Conversation) -> str:
    """Changes when the conversation's status, owner, queue, priority, snooze or tags change."""
    tags = ",".join(str(t.pk) for t in conversation.tags.all())
    raw = (
        f"{conversation.status}:{conversation.assignee_id}:{conversation.queue_id}:{conversation.priority}:"
        f"{conversation.snoozed_until}:{tags}"
    )
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


def constituent_other_conversations(
    *, office: Office, constituent_id: int, exclude_pk: int, limit: int = OTHER_CONVERSATIONS_SHOWN
) -> list[Conversation]:
    return list(
        Conversation.objects.filter(office=office, constituent_id=constituent_id)
        .exclude(pk=exclude_pk)
        .order_by("-last_activity_at", "-id")[:limit]
    )


def message_get(*, office: Office, pk: int) -> Message | None:
    return Message.objects.filter(office=office, pk=pk).select_related("conversation").first()


def media_get(*, office: Office, pk: int) -> Media | None:
    return Media.objects.filter(office=office, pk=pk).first()
