"""The inbox list: conversations newest-activity first, with keyset pagination."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from messages.models import Conversation, ConversationStatus
from offices.models import Office

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after the last row of a page: (last_activity_at, id), both descending."""

    last_activity_at: datetime
    pk: int

    def encode(self) -> str:
        raw = f"{self.last_activity_at.isoformat()}|{self.pk}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor | None:
        """None for anything malformed: a tampered cursor shows page one, never a 500."""
        try:
            padded = token + "=" * (-len(token) % 4)
            at, pk = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
            moment = datetime.fromisoformat(at)
            if moment.tzinfo is None:
                return None
            return cls(moment, int(pk))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None


@dataclass(frozen=True, slots=True)
class InboxPage:
    conversations: list[Conversation]
    next_cursor: str | None


def inbox_conversations(*, office: Office) -> QuerySet[Conversation]:
    """All of the office's conversations, with what an inbox row shows, newest activity first."""
    return (
        Conversation.objects.filter(office=office)
        .select_related("constituent", "assignee", "queue")
        .prefetch_related("tags")
        .order_by("-last_activity_at", "-id")
    )


def inbox_page(*, queryset: QuerySet[Conversation], cursor: str | None, size: int = PAGE_SIZE) -> InboxPage:
    """One keyset page of an (office-scoped, ordered) conversation queryset."""
    position = Cursor.decode(cursor) if cursor else None
    if position is not None:
        queryset = queryset.filter(
            Q(last_activity_at__lt=position.last_activity_at)
            | Q(last_activity_at=position.last_activity_at, pk__lt=position.pk)
        )
    rows = list(queryset[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = Cursor(rows[-1].last_activity_at, rows[-1].pk).encode() if more and rows else None
    return InboxPage(rows, next_cursor)


def open_statuses() -> list[str]:
    return [ConversationStatus.OPEN, ConversationStatus.PENDING]
