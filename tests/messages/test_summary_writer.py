"""The conversation's inbox summary has one writer (messages.services.threading), and every conflict clause
of a partial unique index is written once and reused."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from messages.models import Channel, Conversation, ConversationStatus, Direction
from messages.services.threading import (
    SummaryKind,
    Touch,
    conversation_summary_apply,
    conversation_summary_new,
    conversation_touch_where,
    preview_text,
    summary_kind,
)
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("civicdesk", "common", "offices", "constituents", "messages", "voice", "demo")
SUMMARY_COLUMNS = (
    "last_activity_at",
    "last_message_preview",
    "last_message_channel",
    "last_inbound_at",
    "snoozed_until",
    "first_response_at",
)
WRITER = ROOT / "messages" / "services" / "threading.py"


def _sources() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def test_each_conflict_clause_of_a_unique_index_is_written_once() -> None:
    clauses: dict[str, list[str]] = {}
    for path in _sources():
        for line in path.read_text().splitlines():
            for clause in re.findall(r"ON CONFLICT \(.*?DO (?:NOTHING|UPDATE)", line):
                clauses.setdefault(clause, []).append(str(path.relative_to(ROOT)))
    assert clauses == {
        "ON CONFLICT (provider_sid) DO NOTHING": ["messages/services/threading.py"],
        "ON CONFLICT (constituent_id) WHERE NOT (status = 'closed') DO NOTHING": [
            "messages/services/threading.py"
        ],
        "ON CONFLICT (office_id, phone) WHERE NOT (phone = '') DO NOTHING": ["constituents/services.py"],
    }


def test_only_the_writer_assigns_the_summary_columns() -> None:
    # ``snoozed_until`` is also staff's to set (snoozing); only its wake-up belongs to the summary.
    written = [column for column in SUMMARY_COLUMNS if column != "snoozed_until"]
    assignment = re.compile(rf"\b({'|'.join(written)})\s*=[^=]")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _sources()
        if path != WRITER and ("services" in path.parts or path.parent.name == "demo")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if assignment.search(line)
    ]
    assert offenders == []


KINDS = [
    summary_kind(direction=Direction.INBOUND, channel=Channel.SMS, staff_reply=False),
    summary_kind(direction=Direction.INBOUND, channel=Channel.VOICEMAIL, staff_reply=False),
    summary_kind(direction=Direction.INBOUND, channel=Channel.CALL, staff_reply=False),
    summary_kind(direction=Direction.OUTBOUND, channel=Channel.SMS, staff_reply=True),
    summary_kind(direction=Direction.INTERNAL, channel=Channel.NOTE, staff_reply=True),
]


def test_the_kinds_of_message() -> None:
    text, voicemail, call, reply, note = KINDS
    assert text == SummaryKind(Channel.SMS, attention=True)
    assert voicemail.attention
    assert call == SummaryKind(Channel.CALL)  # a call alone asks nothing of staff
    assert reply == SummaryKind(Channel.SMS, first_response=True)
    assert note == SummaryKind(Channel.NOTE)


def _summary(conversation: Conversation) -> tuple[Any, ...]:
    return (conversation.status, *(getattr(conversation, column) for column in SUMMARY_COLUMNS))


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: f"{k.channel}-{k.attention}-{k.first_response}")
@pytest.mark.parametrize(
    "status", [ConversationStatus.OPEN, ConversationStatus.SNOOZED, ConversationStatus.PENDING]
)
@pytest.mark.parametrize("late", [False, True], ids=["newer", "older"])
def test_the_python_fold_is_the_sql_fold(kind: SummaryKind, status: ConversationStatus, late: bool) -> None:
    """The demo seed's summary (Python) and the services' (SQL) are the same rule, in every case."""
    now = timezone.now()
    conversation: Any = factories.ConversationFactory.create(
        status=status,
        snoozed_until=now + timedelta(days=1) if status == ConversationStatus.SNOOZED else None,
        last_activity_at=now,
        last_message_preview="before",
        last_message_channel=Channel.SMS,
        last_inbound_at=now - timedelta(minutes=5),
        first_response_at=now - timedelta(minutes=3) if late else None,
    )
    at = now - timedelta(minutes=10) if late else now + timedelta(minutes=1)
    touch = Touch(
        at=at,
        preview="the message",
        channel=kind.channel,
        direction=Direction.INBOUND if kind.attention or kind.channel == Channel.CALL else Direction.OUTBOUND,
        staff_reply=kind.first_response,
    )
    assert touch.kind == kind
    conversation_summary_apply(conversation, touch)
    conversation_touch_where("id = %(id)s", {"id": conversation.pk}, touch)
    stored = Conversation.objects.get(pk=conversation.pk)
    assert _summary(stored) == _summary(conversation)
    if late:  # a message folded in late moves neither the inbox order nor the preview
        assert (stored.last_activity_at, stored.last_message_preview) == (now, "before")
    else:
        assert (stored.last_activity_at, stored.last_message_preview) == (at, "the message")
        assert stored.last_message_channel == kind.channel


def test_a_new_thread_starts_with_the_message_in_its_summary() -> None:
    assert dict(conversation_summary_new(KINDS[0], at="$at", preview="$p")) == {
        "last_activity_at": "$at",
        "last_message_preview": "$p",
        "last_message_channel": "'sms'",
        "last_inbound_at": "$at",
    }
    assert dict(conversation_summary_new(KINDS[2], at="$at", preview="$p")) == {
        "last_activity_at": "$at",
        "last_message_preview": "$p",
        "last_message_channel": "'call'",
    }


def test_previews_of_messages_without_a_body() -> None:
    assert preview_text("", Channel.VOICEMAIL, duration_seconds=42) == "Voicemail, 0:42"
    assert preview_text("", Channel.VOICEMAIL, duration_seconds=125) == "Voicemail, 2:05"
    assert preview_text("", Channel.VOICEMAIL) == "Voicemail"
    assert preview_text("  Call me\nback ", Channel.VOICEMAIL, duration_seconds=42) == "Call me back"
    assert preview_text("", Channel.MMS) == "[picture]"
