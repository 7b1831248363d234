"""Calls: one ``Message(channel="call", provider_sid=CallSid)`` per call, in the caller's thread.

Every voice webhook for a call goes through :func:`call_row_for`, which returns the call's row locked, and
creates it from the caller and office numbers when this is the first webhook we see for the call (normally
the incoming call; after a lost request, any later one). Facts are merged into ``Message.details`` so that
the end state does not depend on the order webhooks arrive in:

- ``menu_path``: one entry per menu step, keyed by the step number carried in our own callback URLs, so a
  repeated webhook rewrites its entry instead of adding one;
- ``call_status`` only moves forward in rank; ``duration`` comes with the final status;
- ``dial``, ``answered_by``, ``recordings``, ``tally``, ``topic``: set by their own webhooks;
- ``outcome`` is derived from the facts above every time (:func:`outcome_for`), never stored as a step.

Calls are "quiet" in the inbox: they move the thread's activity time but do not mark it unread. A voicemail
(see :mod:`.voicemail`) is what asks staff for attention. The thread shows the call as :func:`call_preview`
words it ("Call, 2 min, answered by …", "Missed call"); every write of the call re-derives it from the facts
and, when it changed, shows it in the thread if the call is still its latest message, so the preview ends
right whatever order the webhooks came in. A call-in vote is counted on its campaign and is not inbox
activity: a call that starts at the call-in menu is folded into its caller's thread only once it turns out
to be something else (another choice, staff, a voicemail, a hang-up), and never if it is a vote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from django.db import connection, transaction
from django.utils import timezone

from common.rawsql import insert_params, insert_select_sql, insert_sql
from constituents.models import SmsConsent
from constituents.services import LocationHints, constituent_create_anonymous, constituent_ref_for_phone
from messages.models import Channel, Conversation, Direction, Message, MessageStatus
from messages.services.threading import (
    CONVERSATION_UNCLOSED_CONFLICT,
    MESSAGE_SID_CONFLICT,
    SummaryKind,
    Touch,
    conversation_id_for_inbound,
    conversation_preview_then,
    conversation_summary_new,
    conversation_summary_then,
    conversation_touch_where,
    touch_params,
)
from messages.services.triage import conversation_close
from offices.selectors import member_for_phone, office_number_route_for
from voice.models import CallInCampaign, CallInPosition, CallOutcome, ParkedVoiceCallback
from voice.services import flow
from voice.services.config import VoiceConfig, voice_config_for
from voice.services.rows import (
    Read,
    call_locked,
    call_read,
    message_write,
    message_write_if_unchanged,
)
from voice.services.steps import HangupStep, Step
from voice.services.tallies import call_in_tally_record
from voice.twilio.payloads import CallStatus, DialResult, GatherResult, InboundCall

logger = logging.getLogger(__name__)

T = TypeVar("T")

# https://www.twilio.com/docs/voice/api/call-resource#call-status-values. Terminal states share a rank: the
# first to arrive wins, and a late "ringing" never undoes "completed".
CALL_STATUS_RANK: dict[str, int] = {
    "queued": 0,
    "initiated": 0,
    "ringing": 1,
    "in-progress": 2,
    "completed": 3,
    "busy": 3,
    "no-answer": 3,
    "failed": 3,
    "canceled": 3,
}
TERMINAL_CALL_STATUSES = frozenset(
    status for status, rank in CALL_STATUS_RANK.items() if rank == max(CALL_STATUS_RANK.values())
)
# DialCallStatus values meaning staff picked up (https://www.twilio.com/docs/voice/twiml/dial#dialcallstatus).
ANSWERED_DIAL_STATUSES = frozenset({"completed", "answered"})
# Compare-and-set attempts before a webhook falls back to locking the row.
CAS_ATTEMPTS = 3
# What a call does to its thread's summary: activity and preview, not unread.
CALL_SUMMARY = SummaryKind(channel=Channel.CALL)
# ``details["inbox"]`` while a call that began at the call-in menu may still be a vote: not in the thread's
# summary yet. Removed once the call is folded in.
AWAITING_VOTE = "awaiting_vote"


@dataclass(frozen=True, slots=True)
class VoiceResult:
    """A webhook's answer (``step``) and the call it concerns (None when the call could not be placed)."""

    step: Step
    call: Message | None


# --- the call row --------------------------------------------------------------------------------------


class LostRace(Exception):
    """Another webhook of the same new call stored its row first: roll this transaction back, run it again."""


def atomic_retrying(work: Callable[[], T]) -> T:
    """Run ``work`` in a transaction; if it lost the race to create the call's row, run it once more.

    Two first webhooks of one call (say the incoming call and a status callback) both try to create the row;
    the unique CallSid lets one INSERT win, and the loser rolls back everything it did (its constituent and
    thread for a withheld number included) and runs again, now finding the winner's row.
    """
    try:
        with transaction.atomic():
            return work()
    except LostRace:
        with transaction.atomic():
            return work()


def call_row_for(*, call_sid: str, context: InboundCall | None, at: datetime) -> Read | None:
    """The call's row, locked (``SELECT … FOR UPDATE``, with its thread's status); run inside a transaction.

    A call we have not seen is created from ``context`` (the webhook's caller and office numbers) in the
    caller's thread, and any callbacks parked for it are applied. Returns None when the call is unknown and
    ``context`` is missing or names no office number that takes calls. Raises :class:`LostRace` if another
    webhook created it meanwhile (see :func:`atomic_retrying`).
    """
    read = call_locked(call_sid, with_thread=True)
    if read is not None or context is None:
        return read
    return call_create(call_sid=call_sid, context=context, at=at)


def _config_for_number(e164: str) -> tuple[VoiceConfig | None, int | None]:
    """(office configuration, number id) for a number that takes calls; (None, None) for any other."""
    route = office_number_route_for(e164=e164) if e164 else None
    if route is None:
        return None, None
    config = voice_config_for(office_id=route.office_id)
    if not config.takes_calls_on(route.number_id):
        return None, None
    return config, route.number_id


def call_create(
    *,
    call_sid: str,
    context: InboundCall,
    at: datetime,
    config: VoiceConfig | None = None,
    details: dict[str, Any] | None = None,
) -> Read | None:
    """Store a call first seen now, in the caller's thread; its row stays locked. Run inside a transaction.

    ``details``: the webhook's first facts, written in the INSERT. None if the office number takes no calls.
    Raises :class:`LostRace` if the CallSid is stored already (the whole transaction must roll back). Applies
    any callbacks parked for the call.
    """
    if config is None:
        config, _ = _config_for_number(context.to_e164 or "")
        if config is None:
            return None
    office_id = config.office_id
    if context.from_e164:
        hints = LocationHints(
            city=context.caller_city or "",
            state=context.caller_state or "",
            zip_code=context.caller_zip or "",
        )
        # A caller has given no consent to texts; only a text gives it (constituents.models.SmsConsent).
        ref = constituent_ref_for_phone(
            office_id=office_id, phone=context.from_e164, hints=hints, consent=SmsConsent.NONE
        )
        constituent_id, new_constituent = ref.id, ref.created
    else:
        # "Anonymous", "+266696687" and other withheld caller IDs: a thread of its own for each call.
        anonymous = constituent_create_anonymous(office_id=office_id, consent=SmsConsent.NONE)
        constituent_id, new_constituent = anonymous.pk, True
    facts: dict[str, Any] = {
        "account_sid": context.account_sid,
        "caller_withheld": not context.from_e164,
        "call_status": context.call_status or "ringing",
        "menu_path": [],
        "recordings": [],
        "outcome": CallOutcome.IN_PROGRESS,
        **(details or {}),
    }
    row = Message(
        office_id=office_id,
        direction=Direction.INBOUND,
        channel=Channel.CALL,
        provider_sid=call_sid,
        status=MessageStatus.RECEIVED,
        from_number=context.from_raw[:32],
        to_number=context.to_raw[:32],
        created_at=at,
        # Calls never go through SMS follow-up processing (keywords, auto-replies).
        processed_at=at,
        details=facts,
    )
    facts["preview"] = preview = call_preview(row)
    conversation_id, opened, status = _thread_for_call(
        office_id,
        constituent_id,
        new_constituent,
        at,
        preview=preview,
        fold=facts.get("inbox") != AWAITING_VOTE,
    )
    row.conversation_id = conversation_id
    # A thread this call started holds nothing else: a call-in tally may close it again.
    facts["opened_conversation"] = opened
    with connection.cursor() as cursor:
        cursor.execute(_call_insert_sql(), [*insert_params(row), call_sid])
        inserted = cursor.fetchone()
    if inserted is None:
        raise LostRace(call_sid)
    row.pk, parked = inserted
    if parked:
        from voice.services.parking import parked_callbacks_apply  # parking imports calls

        parked_callbacks_apply(call_sid=call_sid)
        return call_locked(call_sid, with_thread=True)
    return Read(row, "", row.body, row.duration_seconds, status)


@cache
def _call_insert_sql() -> str:
    # The new row, and whether callbacks wait for it, in one statement.
    insert = insert_sql(Message, conflict=MESSAGE_SID_CONFLICT)
    parked = ParkedVoiceCallback._meta.db_table
    return (
        f"WITH inserted AS ({insert}) SELECT id, EXISTS (SELECT 1 FROM {parked} "  # noqa: S608
        "WHERE call_sid = %s AND applied_at IS NULL) FROM inserted"
    )


_CONVERSATIONS = Conversation._meta.db_table
_UNCLOSED = "constituent_id = %(constituent_id)s AND status <> 'closed'"
_THREAD_COLUMNS = "id, created_at, status"


def _thread_for_call(
    office_id: int, constituent_id: int, new_constituent: bool, at: datetime, *, preview: str, fold: bool
) -> tuple[int, bool, str]:
    """(thread id, whether this call opened it, its status): the caller's thread, noted and locked.

    ``fold``: fold the call (its ``preview``) into the thread's summary; False for a call that may be a
    call-in vote, which only locks a thread it finds (one it starts holds only the call). One statement in
    the common cases: a new constituent gets a new thread with the call already in its summary; a known
    one's unclosed thread is found, locked and noted by one UPDATE. Otherwise the shared threading rules pick
    (reopen or create) the thread.
    """
    touch = Touch(at=at, preview=preview, channel=Channel.CALL, direction=Direction.INBOUND)
    params = {"office_id": office_id, "constituent_id": constituent_id, **touch_params(touch)}
    with connection.cursor() as cursor:
        if new_constituent:
            cursor.execute(_conversation_insert_sql(), params)
            row = cursor.fetchone()
            if row is not None:
                return int(row[0]), True, str(row[1])
        elif fold:
            row = conversation_touch_where(_UNCLOSED, params, touch, returning=_THREAD_COLUMNS)
            if row is not None:
                return int(row[0]), row[1] == at, str(row[2])
        else:
            cursor.execute(_LOCK_UNCLOSED_SQL, params)
            row = cursor.fetchone()
            if row is not None:
                return int(row[0]), row[1] == at, str(row[2])
    conversation_id = conversation_id_for_inbound(office_id=office_id, constituent_id=constituent_id, at=at)
    if fold:
        row = conversation_touch_where(
            "id = %(id)s", {"id": conversation_id}, touch, returning=_THREAD_COLUMNS
        )
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {_THREAD_COLUMNS} FROM {_CONVERSATIONS} WHERE id = %s", [conversation_id])  # noqa: S608
            row = cursor.fetchone()
    if row is None:
        raise Conversation.DoesNotExist(f"thread {conversation_id} vanished while locked")
    return int(row[0]), row[1] == at, str(row[2])


_LOCK_UNCLOSED_SQL = f"SELECT {_THREAD_COLUMNS} FROM {_CONVERSATIONS} WHERE {_UNCLOSED} FOR UPDATE"  # noqa: S608


@cache
def _conversation_insert_sql() -> str:
    """A new caller's thread, with the call in its summary (parameters as :func:`_thread_for_call`'s)."""
    return insert_select_sql(
        Conversation,
        prefix="t",
        given=(),
        computed=(
            ("office_id", "%(office_id)s"),
            ("constituent_id", "%(constituent_id)s"),
            *conversation_summary_new(CALL_SUMMARY, at="%(touch_at)s", preview="%(touch_preview)s"),
            ("created_at", "%(touch_at)s"),
        ),
        conflict=CONVERSATION_UNCLOSED_CONFLICT,
        returning="id, status",
    )


_MINUTE = 60


def _minutes(seconds: int) -> str:
    """A call's length as staff say it: "under a minute", else whole minutes, rounded to the nearest."""
    return "under a minute" if seconds < _MINUTE else f"{(seconds + _MINUTE // 2) // _MINUTE} min"


def call_preview(call: Message) -> str:
    """The call as its thread's inbox shows it, from its facts (the same facts give the same words).

    "Call, 2 min, answered by Riley Nguyen" (the office member whose phone picked up, by name, or that
    phone's number when it is no member's; the talk time when the dial result says it, else the whole
    call's), "Missed call" when no one answered (a voicemail left on the call is its own message, previewed
    by its transcript or length), "Call in progress" until the outcome is known.
    """
    details = call.details
    outcome = outcome_for(details)
    if outcome == CallOutcome.ANSWERED:
        dial = details.get("dial") or {}
        seconds = dial.get("duration") or call.duration_seconds
        parts = ["Call"]
        if seconds:
            parts.append(_minutes(int(seconds)))
        who = details.get("answered_by")
        parts.append(f"answered by {who}" if who else "answered")
        return ", ".join(parts)
    if outcome in (CallOutcome.MISSED, CallOutcome.ABANDONED, CallOutcome.VOICEMAIL):
        return "Missed call"
    if outcome == CallOutcome.TALLIED:
        return "Call-in vote"
    return "Call in progress"


def _awaits_vote(details: dict[str, Any]) -> bool:
    """The call began at the call-in menu and may still be a vote (or is one): keep it out of the summary."""
    if details.get("inbox") != AWAITING_VOTE:
        return False
    if details.get("tally"):
        return True
    chose = any(int(entry.get("step", 0)) >= 1 for entry in details.get("menu_path", []))
    return not chose and outcome_for(details) == CallOutcome.IN_PROGRESS


def _summary_step(call: Message) -> tuple[str, list[Any]]:
    """The thread's side of writing the call (a ``then`` step for ``rows``): fold a call that is no vote
    into the summary, or show its new preview; nothing if neither changed."""
    details = call.details
    if _awaits_vote(details):
        return "", []
    preview = call_preview(call)
    if details.get("inbox") == AWAITING_VOTE:
        del details["inbox"]
        details["preview"] = preview
        return conversation_summary_then(CALL_SUMMARY), [preview]
    if details.get("preview") != preview:
        details["preview"] = preview
        return conversation_preview_then(Channel.CALL), [preview]
    return "", []


def outcome_for(details: dict[str, Any]) -> CallOutcome:
    """The call's outcome from its facts; the same facts give the same outcome in any arrival order."""
    if details.get("recordings"):
        return CallOutcome.VOICEMAIL
    dial = details.get("dial") or {}
    if dial.get("status") in ANSWERED_DIAL_STATUSES or details.get("answered_by"):
        return CallOutcome.ANSWERED
    if dial.get("status"):
        return CallOutcome.MISSED
    if details.get("tally"):
        return CallOutcome.TALLIED
    if details.get("call_status") in TERMINAL_CALL_STATUSES:
        return CallOutcome.ABANDONED
    return CallOutcome.IN_PROGRESS


def call_save(call: Message, *, at: datetime) -> None:
    """Re-derive the outcome and write the call's details, with its thread's summary if that changes (the
    row must be locked). One statement."""
    call.details["outcome"] = outcome_for(call.details).value
    call.status_updated_at = at
    then, params = _summary_step(call)
    message_write(call, at=at, then=then, then_params=params)


def call_save_if_unchanged(read: Read, *, at: datetime) -> bool:
    """Re-derive the outcome and write the call's details (with its thread's summary if that changes) if no
    one wrote the row since ``read``. One statement."""
    call = read.message
    call.details["outcome"] = outcome_for(call.details).value
    call.status_updated_at = at
    then, params = _summary_step(call)
    return message_write_if_unchanged(read, at=at, then=then, then_params=params)


def path_record(call: Message, entry: dict[str, Any]) -> None:
    """Put ``entry`` in the menu path at its step, replacing what a repeated webhook wrote there before."""
    path = [item for item in call.details.get("menu_path", []) if item.get("step") != entry.get("step")]
    path.append(entry)
    call.details["menu_path"] = sorted(path, key=lambda item: int(item.get("step", 0)))


# --- webhooks ---------------------------------------------------------------------------------------------


def call_receive(*, call: InboundCall, at: datetime | None = None) -> VoiceResult:
    """A new call: store it in the caller's thread and decide the greeting. Idempotent on CallSid.

    Locks the call row; may create a constituent and a thread; applies parked callbacks. No network I/O.
    A new call is one transaction of three statements (constituent, thread, call) for a new caller.
    """
    now = at or timezone.now()
    config, _ = _config_for_number(call.to_e164 or "")
    if config is None:
        logger.warning("call %s to %r: no office takes calls on that number", call.call_sid, call.to_raw)
        return VoiceResult(flow.not_in_service_step(), None)
    is_open = config.schedule.is_open(now)
    decision = flow.entry_decision(office=config.office, config=config, is_open=is_open)
    facts: dict[str, Any] = {"menu_path": [decision.entry], "after_hours": not is_open}
    if decision.campaign is not None:  # the call-in menu first: the call may be a vote
        facts["inbox"] = AWAITING_VOTE
    attempts = iter((True,))

    def receive() -> Read | None:
        if next(attempts, False):
            # The common case is a call not seen before: create it straight away. If it was seen, the
            # INSERT loses and the transaction runs again below, merging into the stored row.
            return call_create(call_sid=call.call_sid, context=call, at=now, config=config, details=facts)
        row = call_row_for(call_sid=call.call_sid, context=call, at=now)
        if row is not None:  # a repeated webhook, or the call was stored from a later one first
            path_record(row.message, decision.entry)
            row.message.details["after_hours"] = not is_open
            _status_merge(row.message, call.call_status, None)
            call_save(row.message, at=now)
        return row

    row = atomic_retrying(receive)
    if row is None:
        return VoiceResult(flow.not_in_service_step(), None)
    return VoiceResult(decision.step, row.message)


def menu_choose(
    *,
    gather: GatherResult,
    context: InboundCall | None,
    node: str,
    step: int,
    attempt: int,
    at: datetime | None = None,
) -> VoiceResult:
    """The caller answered a menu: record the choice in the path (and a call-in tally); decide what's next.

    Usually two statements and no transaction (a compare-and-set of the call's row); a tally, or a call not
    stored yet, takes the locked path.
    """
    now = at or timezone.now()

    def decide(row: Message) -> flow.Decision:
        config = voice_config_for(office_id=row.office_id)
        return flow.choice_decision(
            office=config.office,
            config=config,
            call_sid=row.provider_sid or gather.call_sid,
            node=node,
            step=step,
            attempt=attempt,
            digits=gather.digits,
            speech=gather.speech_result,
            is_open=config.schedule.is_open(now),
        )

    for _attempt in range(CAS_ATTEMPTS):
        read = call_read(gather.call_sid)
        if read is None:
            break
        decision = decide(read.message)
        if decision.tally is not None and decision.campaign is not None:
            break
        path_record(read.message, decision.entry)
        if call_save_if_unchanged(read, at=now):
            return VoiceResult(decision.step, read.message)

    def locked() -> VoiceResult:
        row = call_row_for(call_sid=gather.call_sid, context=context, at=now)
        if row is None:
            logger.warning("menu choice for unknown call %s with no office number", gather.call_sid)
            return VoiceResult(flow.not_in_service_step(), None)
        call = row.message
        decision = decide(call)
        path_record(call, decision.entry)
        if decision.tally is not None and decision.campaign is not None:
            _tally(call, decision.campaign, decision.tally, at=now)
        call_save(call, at=now)
        return VoiceResult(decision.step, call)

    return atomic_retrying(locked)


def _tally(call: Message, campaign: CallInCampaign, position: CallInPosition, *, at: datetime) -> None:
    call_in_tally_record(campaign=campaign, call=call, position=position, at=at)
    call.details["tally"] = {"campaign": campaign.pk, "title": campaign.title, "position": position.value}
    call.details["topic"] = campaign.tag.name
    if call.details.get("opened_conversation"):
        _close_if_only_this_call(call)


def _close_if_only_this_call(call: Message) -> None:
    """A call-in tally needs no staff time: close the thread the call opened, if it holds nothing else."""
    if Message.objects.filter(conversation_id=call.conversation_id).exclude(pk=call.pk).exists():
        return
    conversation_close(conversation=call.conversation, actor=None)


def dial_result_apply(
    *,
    dial: DialResult,
    context: InboundCall | None,
    menu_id: int | None,
    step: int,
    at: datetime | None = None,
) -> VoiceResult:
    """Staff were rung: keep what happened; if no one answered, the caller goes to voicemail."""
    now = at or timezone.now()

    def apply() -> VoiceResult:
        row = call_row_for(call_sid=dial.call_sid, context=context, at=now)
        if row is None:
            logger.warning("dial result for unknown call %s with no office number", dial.call_sid)
            return VoiceResult(HangupStep(), None)
        call = row.message
        call.details["dial"] = {
            "status": dial.dial_call_status,
            "call_sid": dial.dial_call_sid or "",
            "duration": dial.dial_call_duration,
        }
        call_save(call, at=now)
        if dial.dial_call_status in ANSWERED_DIAL_STATUSES:
            return VoiceResult(HangupStep(), call)
        config = voice_config_for(office_id=call.office_id)
        return VoiceResult(
            flow.staff_missed_step(office=config.office, config=config, menu_id=menu_id, step=step), call
        )

    return atomic_retrying(apply)


@transaction.atomic
def staff_answer_record(
    *, leg: InboundCall, call_sid: str, at: datetime | None = None, signed_for_office_id: int | None = None
) -> VoiceResult:
    """A staff phone picked up (the <Number url> request of the dialled leg): note who, then connect.

    ``call_sid`` is the caller's call, from our own URL. A request for a call not stored yet is parked (for
    ``signed_for_office_id``'s calls only, if an office's subaccount token signed it).
    """
    now = at or timezone.now()
    row = call_row_for(call_sid=call_sid, context=None, at=now)
    if row is None:
        from voice.services.parking import callback_park  # parking imports calls

        callback_park(
            call_sid=call_sid,
            kind="staff_answered",
            payload=leg.raw,
            query={"call": call_sid},
            signed_for_office_id=signed_for_office_id,
        )
        return VoiceResult(flow.whisper_step(), None)
    staff_answer_merge(row, leg, at=now)
    return VoiceResult(flow.whisper_step(), row.message)


def staff_answer_merge(row: Read, leg: InboundCall, *, at: datetime) -> None:
    """Note who picked up: the member of the call's office whose phone it is (by name), else the number."""
    call = row.message
    member = member_for_phone(office_id=call.office_id, e164=leg.to_e164) if leg.to_e164 else None
    if member is not None:
        call.details["answered_by"] = member.display_name
        call.details["answered_by_user_id"] = member.user_id
    else:
        call.details["answered_by"] = leg.to_e164 or leg.to_raw[:32]
        call.details.pop("answered_by_user_id", None)
    call.details["answered_leg_sid"] = leg.call_sid
    call_save(call, at=at)


def call_status_apply(
    *, status: CallStatus, context: InboundCall | None, at: datetime | None = None
) -> Message | None:
    """Twilio's call status callback: advance the status (by rank), keep the duration. Idempotent.

    Usually two statements and no transaction (a compare-and-set of the call's row).
    """
    now = at or timezone.now()
    for _attempt in range(CAS_ATTEMPTS):
        read = call_read(status.call_sid)
        if read is None:
            break
        _status_merge(read.message, status.call_status, status.call_duration)
        if call_save_if_unchanged(read, at=now):
            return read.message

    def locked() -> Message | None:
        row = call_row_for(call_sid=status.call_sid, context=context, at=now)
        if row is None:
            logger.warning(
                "status %r for unknown call %s with no office number", status.call_status, status.call_sid
            )
            return None
        _status_merge(row.message, status.call_status, status.call_duration)
        call_save(row.message, at=now)
        return row.message

    return atomic_retrying(locked)


def _status_merge(call: Message, status: str, duration: int | None) -> None:
    current = call.details.get("call_status", "")
    if CALL_STATUS_RANK.get(status, -1) > CALL_STATUS_RANK.get(current, -1):
        call.details["call_status"] = status
    if duration is not None:
        call.duration_seconds = max(duration, call.duration_seconds or 0)
