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
(see :mod:`.voicemail`) is what asks staff for attention.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models.functions import Greatest
from django.utils import timezone

from constituents.services import LocationHints, constituent_create_anonymous, constituent_for_phone
from messages.models import (
    CallInCampaign,
    CallInPosition,
    CallOutcome,
    Channel,
    Conversation,
    Direction,
    Message,
    MessageStatus,
)
from messages.services.threading import conversation_for_inbound, preview_for
from messages.services.triage import conversation_close
from messages.services.voice import flow
from messages.services.voice.config import voice_config
from messages.services.voice.steps import HangupStep, Step
from messages.services.voice.tallies import call_in_tally_record
from messages.twilio.payloads import CallStatus, DialResult, GatherResult, InboundCall
from offices.models import OfficePhoneNumber
from offices.selectors import office_phone_number_for

logger = logging.getLogger(__name__)

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
TERMINAL_CALL_STATUSES = frozenset(status for status, rank in CALL_STATUS_RANK.items() if rank == 3)
# DialCallStatus values meaning staff picked up (https://www.twilio.com/docs/voice/twiml/dial#dialcallstatus).
ANSWERED_DIAL_STATUSES = frozenset({"completed", "answered"})


@dataclass(frozen=True, slots=True)
class VoiceResult:
    """A webhook's answer (``step``) and the call it concerns (None when the call could not be placed)."""

    step: Step
    call: Message | None


# --- the call row --------------------------------------------------------------------------------------


def locked_call(call_sid: str) -> Message | None:
    return (
        Message.objects.select_for_update(of=("self",))
        # The office is needed by every webhook; the thread only by some, so it loads on first use (joining
        # it here doubled the time Django took to build this, the hottest query of the hotline).
        .select_related("office")
        .filter(provider_sid=call_sid, channel=Channel.CALL)
        .first()
    )


def _lock_call_sid(call_sid: str) -> None:
    """Serialise the creation of one call's row across concurrent webhooks, until this transaction ends.

    Without it, two first webhooks of one withheld-number call would each create an anonymous constituent
    and thread before one of them lost the race on the unique CallSid.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [call_sid])


def call_row_for(*, call_sid: str, context: InboundCall | None, at: datetime) -> Message | None:
    """The call's row, locked (``SELECT … FOR UPDATE``); run inside a transaction.

    A call we have not seen is created from ``context`` (the webhook's caller and office numbers) in the
    caller's thread, and any callbacks parked for it are applied. Returns None when the call is unknown and
    ``context`` is missing or names no office number that takes calls.
    """
    return _call_row(call_sid=call_sid, context=context, at=at)[0]


def _call_row(
    *,
    call_sid: str,
    context: InboundCall | None,
    at: datetime,
    number: OfficePhoneNumber | None = None,
    details: dict[str, Any] | None = None,
) -> tuple[Message | None, bool]:
    """(row, created). ``number``: the office number, if the caller looked it up already; ``details``: written
    into a new row (so the incoming call's first facts cost no second write)."""
    if context is None:
        return locked_call(call_sid), False
    # Taken before looking, so that only one webhook of a new call creates it (a raw query, no ORM).
    _lock_call_sid(call_sid)
    row = locked_call(call_sid)
    if row is not None:
        return row, False
    if number is None:
        number = office_phone_number_for(e164=context.to_e164) if context.to_e164 else None
    if number is None or not number.voice_enabled:
        return None, False

    office = number.office
    if context.from_e164:
        hints = LocationHints(
            city=context.caller_city or "",
            state=context.caller_state or "",
            zip_code=context.caller_zip or "",
        )
        constituent = constituent_for_phone(office=office, phone=context.from_e164, hints=hints)
    else:
        # "Anonymous", "+266696687" and other withheld caller IDs: a thread of its own for each call.
        constituent = constituent_create_anonymous(office_id=office.pk)
    conversation = conversation_for_inbound(constituent=constituent, at=at)
    row = Message(
        office=office,
        conversation=conversation,
        direction=Direction.INBOUND,
        channel=Channel.CALL,
        provider_sid=call_sid,
        status=MessageStatus.RECEIVED,
        from_number=context.from_raw[:32],
        to_number=context.to_raw[:32],
        created_at=at,
        # Calls never go through SMS follow-up processing (keywords, auto-replies).
        processed_at=at,
        details={
            "account_sid": context.account_sid,
            "caller_withheld": not context.from_e164,
            # A thread this call started holds nothing else: a call-in tally may close it again.
            "opened_conversation": conversation.created_at == at,
            "call_status": context.call_status or "ringing",
            "menu_path": [],
            "recordings": [],
            "outcome": CallOutcome.IN_PROGRESS,
            **(details or {}),
        },
    )
    # No savepoint: the advisory lock above means no one else can insert this CallSid now, so a unique
    # violation here would be a real error, not a race to recover from.
    row.save(force_insert=True)
    row.conversation = conversation
    _conversation_note_call(conversation, row)
    from messages.services.voice.parking import parked_callbacks_apply

    if parked_callbacks_apply(call_sid=call_sid):
        row.refresh_from_db(fields=["details", "duration_seconds"])
    return row, True


def _conversation_note_call(conversation: Conversation, call: Message) -> None:
    """Move the thread's activity time and preview to the call, without marking it unread."""
    Conversation.objects.filter(pk=conversation.pk).update(
        last_activity_at=Greatest("last_activity_at", call.created_at),
        last_message_preview=preview_for(call),
        last_message_channel=Channel.CALL,
    )


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
    """Re-derive the outcome and write the call's details (the row must be locked)."""
    call.details["outcome"] = outcome_for(call.details).value
    call.status_updated_at = at
    call.save(update_fields=["details", "duration_seconds", "status_updated_at"])


def path_record(call: Message, entry: dict[str, Any]) -> None:
    """Put ``entry`` in the menu path at its step, replacing what a repeated webhook wrote there before."""
    path = [item for item in call.details.get("menu_path", []) if item.get("step") != entry.get("step")]
    path.append(entry)
    call.details["menu_path"] = sorted(path, key=lambda item: int(item.get("step", 0)))


# --- webhooks ---------------------------------------------------------------------------------------------


@transaction.atomic
def call_receive(*, call: InboundCall, at: datetime | None = None) -> VoiceResult:
    """A new call: store it in the caller's thread and decide the greeting. Idempotent on CallSid.

    Locks the call row; may create a constituent and a thread; applies parked callbacks. No network I/O.
    """
    now = at or timezone.now()
    number = office_phone_number_for(e164=call.to_e164) if call.to_e164 else None
    if number is None or not number.voice_enabled:
        logger.warning("call %s to %r: no office takes calls on that number", call.call_sid, call.to_raw)
        return VoiceResult(flow.not_in_service_step(), None)
    office = number.office
    config = voice_config(office=office)
    is_open = config.schedule.is_open(now)
    decision = flow.entry_decision(office=office, config=config, is_open=is_open)
    facts = {"menu_path": [decision.entry], "after_hours": not is_open}
    row, created = _call_row(call_sid=call.call_sid, context=call, at=now, number=number, details=facts)
    if row is None:
        return VoiceResult(flow.not_in_service_step(), None)
    if not created:  # a repeated webhook, or the call was stored from a later one first
        path_record(row, decision.entry)
        row.details["after_hours"] = not is_open
        _status_merge(row, call.call_status, None)
        call_save(row, at=now)
    return VoiceResult(decision.step, row)


@transaction.atomic
def menu_choose(
    *,
    gather: GatherResult,
    context: InboundCall | None,
    node: str,
    step: int,
    attempt: int,
    at: datetime | None = None,
) -> VoiceResult:
    """The caller answered a menu: record the choice in the path (and a call-in tally); decide what's next."""
    now = at or timezone.now()
    row = call_row_for(call_sid=gather.call_sid, context=context, at=now)
    if row is None:
        logger.warning("menu choice for unknown call %s with no office number", gather.call_sid)
        return VoiceResult(flow.not_in_service_step(), None)
    office = row.office
    config = voice_config(office=office)
    decision = flow.choice_decision(
        office=office,
        config=config,
        call_sid=row.provider_sid or gather.call_sid,
        node=node,
        step=step,
        attempt=attempt,
        digits=gather.digits,
        speech=gather.speech_result,
        is_open=config.schedule.is_open(now),
    )
    path_record(row, decision.entry)
    if decision.tally is not None and decision.campaign is not None:
        _tally(row, decision.campaign, decision.tally, at=now)
    call_save(row, at=now)
    return VoiceResult(decision.step, row)


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


@transaction.atomic
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
    row = call_row_for(call_sid=dial.call_sid, context=context, at=now)
    if row is None:
        logger.warning("dial result for unknown call %s with no office number", dial.call_sid)
        return VoiceResult(HangupStep(), None)
    row.details["dial"] = {
        "status": dial.dial_call_status,
        "call_sid": dial.dial_call_sid or "",
        "duration": dial.dial_call_duration,
    }
    call_save(row, at=now)
    if dial.dial_call_status in ANSWERED_DIAL_STATUSES:
        return VoiceResult(HangupStep(), row)
    config = voice_config(office=row.office)
    return VoiceResult(
        flow.staff_missed_step(office=row.office, config=config, menu_id=menu_id, step=step), row
    )


@transaction.atomic
def staff_answer_record(*, leg: InboundCall, call_sid: str, at: datetime | None = None) -> VoiceResult:
    """A staff phone picked up (the <Number url> request of the dialled leg): note who, then connect.

    ``call_sid`` is the caller's call, from our own URL. A request for a call not stored yet is parked.
    """
    now = at or timezone.now()
    row = call_row_for(call_sid=call_sid, context=None, at=now)
    if row is None:
        from messages.services.voice.parking import callback_park

        callback_park(call_sid=call_sid, kind="staff_answered", payload=leg.raw, query={"call": call_sid})
        return VoiceResult(flow.whisper_step(), None)
    staff_answer_merge(row, leg, at=now)
    return VoiceResult(flow.whisper_step(), row)


def staff_answer_merge(call: Message, leg: InboundCall, *, at: datetime) -> None:
    call.details["answered_by"] = leg.to_e164 or leg.to_raw[:32]
    call.details["answered_leg_sid"] = leg.call_sid
    call_save(call, at=at)


@transaction.atomic
def call_status_apply(
    *, status: CallStatus, context: InboundCall | None, at: datetime | None = None
) -> Message | None:
    """Twilio's call status callback: advance the status (by rank), keep the duration. Idempotent."""
    now = at or timezone.now()
    row = call_row_for(call_sid=status.call_sid, context=context, at=now)
    if row is None:
        logger.warning(
            "status %r for unknown call %s with no office number", status.call_status, status.call_sid
        )
        return None
    _status_merge(row, status.call_status, status.call_duration)
    call_save(row, at=now)
    return row


def _status_merge(call: Message, status: str, duration: int | None) -> None:
    current = call.details.get("call_status", "")
    if CALL_STATUS_RANK.get(status, -1) > CALL_STATUS_RANK.get(current, -1):
        call.details["call_status"] = status
    if duration is not None:
        call.duration_seconds = max(duration, call.duration_seconds or 0)
