"""The conversation timeline's non-message events."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from messages.models import Conversation, ConversationEvent, EventKind


def event_record(
    *, conversation: Conversation, kind: EventKind, actor: AbstractBaseUser | None, data: dict[str, Any]
) -> ConversationEvent:
    return ConversationEvent.objects.create(
        office_id=conversation.office_id,
        conversation=conversation,
        kind=kind,
        actor_id=actor.pk if actor is not None else None,
        data=data,
    )
