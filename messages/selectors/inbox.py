"""The inbox list: conversations newest-activity first, with keyset pagination.

A page is a constant number of queries whatever its size: one for the rows (constituent, assignee and queue
joined), one for their tags, and one for search snippets when searching. The filters themselves live in
``messages.filters`` (a django-filter FilterSet shared with the REST API).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, Q, QuerySet

from messages.models import CannedResponse, Conversation, ConversationStatus, Tag, TriageQueue
from offices.models import ASSIGNABLE_ROLES, Membership, Office

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# "Open" in the inbox's sense: someone in the office still has something to do.
ACTIVE_STATUSES: tuple[str, ...] = (ConversationStatus.OPEN, ConversationStatus.PENDING)


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
            number = int(pk)
            if not 0 < number < 2**63:
                return None
            return cls(moment, number)
        except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
            return None


@dataclass(frozen=True, slots=True)
class InboxPage:
    conversations: list[Conversation]
    next_cursor: str | None
    # The cursor this page started after (None on page one).
    cursor: str | None = None
    size: int = PAGE_SIZE
    snippets: dict[int, str] = field(default_factory=dict)
    # A short hash of what the page shows: the live-update poll compares it to spot changes.
    signature: str = ""


@dataclass(frozen=True, slots=True)
class InboxLookups:
    """The office's queues, tags and members: filter choices, rail entries and bulk-action targets.

    Loaded once per request (three queries) and shared by the rail, the FilterSet and the templates.
    """

    queues: list[TriageQueue]
    tags: list[Tag]
    members: list[Membership]

    @property
    def assignable(self) -> list[Membership]:
        """Members who can own a conversation: admins and staff (officials only read)."""
        return [m for m in self.members if m.is_assignable]

    def tag(self, pk: int) -> Tag | None:
        return next((t for t in self.tags if t.pk == pk), None)

    def queue(self, pk: int) -> TriageQueue | None:
        return next((q for q in self.queues if q.pk == pk), None)


def inbox_lookups(*, office: Office) -> InboxLookups:
    return InboxLookups(
        queues=list(TriageQueue.objects.filter(office=office).order_by("name")),
        tags=list(Tag.objects.filter(office=office).order_by("name")),
        members=list(
            Membership.objects.filter(office=office).select_related("user").order_by("user__username")
        ),
    )


# What an inbox row shows, and nothing more: a page of 200 rows parses every column it fetches.
ROW_FIELDS = (
    "id",
    "office_id",
    "status",
    "priority",
    "last_activity_at",
    "last_message_preview",
    "last_message_channel",
    "last_inbound_at",
    "staff_read_at",
    "snoozed_until",
    "constituent__id",
    "constituent__office_id",
    "constituent__phone",
    "constituent__first_name",
    "constituent__last_name",
    "constituent__email",
    "constituent__in_district",
    "constituent__sms_consent",
    "assignee__id",
    "assignee__username",
    "queue__id",
    "queue__name",
)


def inbox_conversations(*, office: Office) -> QuerySet[Conversation]:
    """All of the office's conversations, with what an inbox row shows, newest activity first.

    Each conversation's tags are in ``tag_list`` (a list, prefetched in one query for the whole page).
    """
    return (
        Conversation.objects.filter(office=office)
        .select_related("constituent", "assignee", "queue")
        .only(*ROW_FIELDS)
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name"), to_attr="tag_list"))
        .order_by("-last_activity_at", "-id")
    )


def clamp_page_size(raw: str | int | None) -> int:
    try:
        size = int(raw) if raw is not None and raw != "" else PAGE_SIZE
    except (TypeError, ValueError):
        return PAGE_SIZE
    return max(1, min(MAX_PAGE_SIZE, size))


def after_cursor(queryset: QuerySet[Conversation], position: Cursor) -> QuerySet[Conversation]:
    """Rows strictly after ``position`` in (last_activity_at desc, id desc) order.

    The redundant ``last_activity_at <= t`` bound gives PostgreSQL an index range to start from; the OR alone
    would make it scan from the top of the index on deep pages.
    """
    return queryset.filter(last_activity_at__lte=position.last_activity_at).filter(
        Q(last_activity_at__lt=position.last_activity_at)
        | Q(last_activity_at=position.last_activity_at, pk__lt=position.pk)
    )


def inbox_page(
    *,
    queryset: QuerySet[Conversation],
    cursor: str | None,
    size: int = PAGE_SIZE,
    search: Sequence[Q] = (),
) -> InboxPage:
    """One keyset page of an (office-scoped, ordered) conversation queryset.

    ``search`` is a search's alternative conditions (``messages.selectors.search.search_branches``). Each is
    planned on its own, limited to one page, and the page is the newest of their union: the same rows as
    filtering by the ORed conditions, without making PostgreSQL find every match first.
    """
    position = Cursor.decode(cursor) if cursor else None
    if position is not None:
        queryset = after_cursor(queryset, position)
    if search:
        limited = [queryset.filter(branch).values_list("pk", flat=True)[: size + 1] for branch in search]
        page_ids = limited[0].union(*limited[1:]) if len(limited) > 1 else limited[0]
        queryset = queryset.filter(pk__in=page_ids)
    rows = list(queryset[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = Cursor(rows[-1].last_activity_at, rows[-1].pk).encode() if more and rows else None
    return InboxPage(
        rows,
        next_cursor,
        cursor=cursor if position is not None else None,
        size=size,
        signature=page_signature(rows),
    )


def page_signature(conversations: Iterable[Conversation]) -> str:
    """Changes when any row's activity, status, owner, queue, priority, tags or unread state changes."""
    digest = hashlib.blake2b(digest_size=8)
    for c in conversations:
        tags = ",".join(str(t.pk) for t in getattr(c, "tag_list", ()))
        digest.update(
            f"{c.pk}:{c.last_activity_at.isoformat()}:{c.status}:{c.assignee_id}:{c.queue_id}:{c.priority}:"
            f"{tags}:{int(c.is_unread)};".encode()
        )
    return digest.hexdigest()


def open_statuses() -> list[str]:
    return list(ACTIVE_STATUSES)


def canned_responses(*, office: Office) -> QuerySet[CannedResponse]:
    return CannedResponse.objects.filter(office=office).order_by("title")


def member_get(*, office: Office, user_id: int) -> AbstractBaseUser | None:
    """A user who is an admin or staff member of the office (someone a conversation can be assigned to)."""
    membership = (
        Membership.objects.select_related("user")
        .filter(office=office, user_id=user_id, role__in=ASSIGNABLE_ROLES)
        .first()
    )
    return membership.user if membership is not None else None


def tag_get(*, office: Office, pk: int) -> Tag | None:
    return Tag.objects.filter(office=office, pk=pk).first()


def queue_get(*, office: Office, pk: int) -> TriageQueue | None:
    return TriageQueue.objects.filter(office=office, pk=pk).first()
