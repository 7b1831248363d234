"""Voice callbacks that come before their call: kept raw, applied when the call's row appears, never dropped.

The recording status, transcription and staff-answered callbacks name a CallSid but neither the caller nor
the office number, so a call we have not stored yet cannot be placed in any office or thread. Such a
callback is stored as a :class:`~messages.models.ParkedVoiceCallback` and replayed, through the same merge
functions as a live one, as soon as any webhook creates the call's row (``calls.call_row_for``); the voice
sweeper retries any left behind.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.datastructures import MultiValueDict

from messages.models import Channel, Message
from messages.twilio.errors import PayloadError
from messages.twilio.payloads import RawParams
from voice.models import ParkedVoiceCallback
from voice.services.rows import Read, call_locked
from voice.twilio.payloads import parse_inbound_call, parse_recording_status, parse_transcription_result

logger = logging.getLogger(__name__)

KINDS = ("recording", "transcription", "staff_answered")


def callback_park(
    *,
    call_sid: str,
    kind: str,
    payload: RawParams,
    query: dict[str, str],
    signed_for_office_id: int | None = None,
) -> ParkedVoiceCallback:
    """Keep a callback for a call not stored yet. Writes one row; no network I/O.

    ``signed_for_office_id``: the office whose own subaccount token signed it (None: the deployment's
    token); it is then applied only if the call turns out to be that office's.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown voice callback kind {kind!r}")
    logger.info("parked %s callback for unknown call %s", kind, call_sid)
    return ParkedVoiceCallback.objects.create(
        call_sid=call_sid,
        kind=kind,
        payload=payload,
        query=query,
        signed_for_office_id=signed_for_office_id,
    )


def _may_apply_to(office_id: int) -> Q:
    """Parked callbacks that may apply to a call of ``office_id``: those signed with the deployment's token,
    and those signed with that office's own subaccount token."""
    return Q(signed_for_office__isnull=True) | Q(signed_for_office_id=office_id)


def parked_callbacks_apply(*, call_sid: str, at: datetime | None = None) -> int:
    """Replay the call's parked callbacks, oldest first, in the transaction that holds the call's row lock."""
    now = at or timezone.now()
    call = call_locked(call_sid, with_thread=True)
    if call is None:
        return 0
    parked = list(
        ParkedVoiceCallback.objects.select_for_update(skip_locked=True)
        .filter(call_sid=call_sid, applied_at__isnull=True)
        .filter(_may_apply_to(call.message.office_id))
        .order_by("received_at", "id")
    )
    for callback in parked:
        try:
            _replay(call, callback, at=now)
        except PayloadError:
            # It parsed when it arrived; only a parser change gets here. Keep it unapplied for a human.
            logger.exception(
                "parked %s callback %s for %s no longer parses", callback.kind, callback.pk, call_sid
            )
            continue
        callback.applied_at = now
        callback.save(update_fields=["applied_at"])
    return len(parked)


def _replay(call: Read, callback: ParkedVoiceCallback, *, at: datetime) -> None:
    from voice.services.calls import staff_answer_merge  # both import this module
    from voice.services.voicemail import plan_from_query, recording_status_merge, transcription_merge

    post: MultiValueDict[str, str] = MultiValueDict(callback.payload)
    plan = plan_from_query(callback.query)
    if callback.kind == "recording":
        recording_status_merge(call, parse_recording_status(post), plan, at=at)
    elif callback.kind == "transcription":
        transcription_merge(call, parse_transcription_result(post), plan, at=at)
    elif callback.kind == "staff_answered":
        staff_answer_merge(call, parse_inbound_call(post), at=at)


def parked_sweep(*, now: datetime | None = None, batch: int = 200) -> int:
    """Apply parked callbacks whose call has since been stored (normally done on the spot: this is a net)."""
    now = now or timezone.now()
    # Only callbacks that may apply to the stored call (see _may_apply_to): one signed for another office
    # never will, and must not take a place in every sweep's batch. "office = COALESCE(signer, office)" is
    # "no signer, or the signer's call" in a form no index on the office can answer, so the call is always
    # found by its SID's unique index, never among the office's millions of messages.
    applicable_call = Message.objects.filter(
        channel=Channel.CALL,
        provider_sid=OuterRef("call_sid"),
        office_id=Coalesce(OuterRef("signed_for_office_id"), F("office_id")),
    )
    call_sids = list(
        ParkedVoiceCallback.objects.filter(applied_at__isnull=True)
        .filter(Exists(applicable_call))
        .values_list("call_sid", flat=True)
        .distinct()[:batch]
    )
    applied = 0
    for call_sid in call_sids:
        with transaction.atomic():
            applied += parked_callbacks_apply(call_sid=call_sid, at=now)
    return applied
