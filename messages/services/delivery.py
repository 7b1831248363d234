"""Delivering outbound texts, and applying what Twilio says happened to them.

Each outbound message is a state machine: queued → sending → sent → delivered | undelivered | failed → read.
- A worker claims a ``queued`` row (SELECT … FOR UPDATE SKIP LOCKED) and marks it ``sending`` before calling
  Twilio, so a duplicated or retried task can never send it twice.
- An outcome we cannot know (a timeout after the request left, a crash) becomes ``unknown``; the reconciler
  asks Twilio what happened. Nothing is ever resent blindly: a second text is worse than a late one.
- Status callbacks only move a message forward in rank, whatever order they arrive in; every raw callback is
  kept, and one for a SID we have not stored yet is parked and applied when the SID is stored.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from constituents.models import ConsentSource, SmsConsent
from constituents.services import consent_set
from messages.models import (
    FAILED_STATUSES,
    STATUS_RANK,
    Direction,
    EventKind,
    Message,
    MessageStatus,
    StatusCallback,
)
from messages.services.events import event_record
from messages.services.replies import OPTED_OUT_REASON, status_callback_url
from messages.twilio.backends import OutboundSms, get_backend
from messages.twilio.errors import (
    PermanentSendError,
    RetryableSendError,
    UnknownOutcomeError,
    reason_for_code,
)
from messages.twilio.payloads import DeliveryStatus
from offices.models import OfficePhoneNumber
from offices.selectors import office_phone_number_for, twilio_credentials_for

logger = logging.getLogger(__name__)

OPTED_OUT_ERROR = 21610
# A row left "sending" this long means the worker died mid-send: reconcile it, never resend it.
SENDING_STALE_AFTER = timedelta(minutes=5)
# Twilio's message list is eventually consistent; give up looking after this long and tell staff.
RECONCILE_GIVE_UP_AFTER = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    sent: bool
    status: str
    detail: str = ""


def _claim(message_id: int) -> Message | None:
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("conversation__constituent")
            .filter(pk=message_id, direction=Direction.OUTBOUND, status=MessageStatus.QUEUED)
            .first()
        )
        if message is None:
            return None
        if message.conversation.constituent.is_opted_out:
            _fail(message, OPTED_OUT_ERROR, OPTED_OUT_REASON)
            return None
        message.status = MessageStatus.SENDING
        message.send_attempts += 1
        message.status_updated_at = timezone.now()
        message.save(update_fields=["status", "send_attempts", "status_updated_at"])
        return message


def message_deliver(*, message_id: int, sender: OfficePhoneNumber | None = None) -> DeliveryOutcome:
    """Send one queued message through the SMS backend, exactly once. Network I/O; called by a worker.

    ``sender``: the office number the message is from, with its office and Twilio account, when the caller
    already holds it (a bulk sender sends thousands from one number); it is looked up otherwise. Either way
    it must be the message's own number, of the message's own office.

    Raises RetryableSendError (after returning the row to ``queued``) so the task can retry with backoff.
    """
    message = _claim(message_id)
    if message is None:
        return DeliveryOutcome(sent=False, status="not-claimable")
    number = sender if sender is not None and sender.e164 == message.from_number else None
    number = number or office_phone_number_for(e164=message.from_number)
    if number is None or number.office_id != message.office_id:
        with transaction.atomic():
            _fail(message, None, "The office number this reply was to be sent from no longer exists.")
        return DeliveryOutcome(sent=False, status=MessageStatus.FAILED)
    credentials = twilio_credentials_for(phone_number=number)
    outbound = OutboundSms(
        to=message.to_number,
        body=message.body,
        from_number=None if number.messaging_service_sid else number.e164,
        messaging_service_sid=number.messaging_service_sid or None,
        account_sid=credentials.account_sid,
        auth_token=credentials.auth_token,
        status_callback=status_callback_url(),
        media_urls=(),
        client_reference=str(message.pk),
    )
    try:
        result = get_backend().send(outbound)
    except RetryableSendError:
        Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
            status=MessageStatus.QUEUED, status_updated_at=timezone.now()
        )
        raise
    except PermanentSendError as exc:
        with transaction.atomic():
            locked = Message.objects.select_for_update().get(pk=message.pk)
            _fail(locked, exc.code, exc.reason)
        return DeliveryOutcome(sent=False, status=MessageStatus.FAILED, detail=exc.reason)
    except UnknownOutcomeError as exc:
        Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
            status=MessageStatus.UNKNOWN, error_message=exc.reason[:300], status_updated_at=timezone.now()
        )
        return DeliveryOutcome(sent=False, status=MessageStatus.UNKNOWN, detail=exc.reason)
    _record_sid(message_id=message.pk, sid=result.sid, status=result.status, segments=result.num_segments)
    return DeliveryOutcome(sent=True, status=result.status)


@transaction.atomic
def _record_sid(*, message_id: int, sid: str, status: str, segments: int | None) -> None:
    """Store Twilio's SID and initial status (no callback is sent for it), then apply parked callbacks."""
    message = Message.objects.select_for_update().get(pk=message_id)
    message.provider_sid = sid
    message.sent_at = timezone.now()
    if segments:
        message.num_segments = segments
    initial = MessageStatus.SENT if status == "sent" else MessageStatus.SENDING
    # "queued"/"accepted" from the create response: Twilio has it. Stay "sending" until a callback says more.
    _advance(message, initial, error_code=None)
    message.save(update_fields=["provider_sid", "sent_at", "num_segments", "status", "status_updated_at"])
    _apply_parked(message)


def _fail(message: Message, code: int | None, reason: str) -> None:
    message.status = MessageStatus.FAILED
    message.error_code = code
    message.error_message = reason[:300]
    message.status_updated_at = timezone.now()
    message.save(update_fields=["status", "error_code", "error_message", "status_updated_at"])
    if code == OPTED_OUT_ERROR:
        _carrier_opt_out(message)


def _carrier_opt_out(message: Message) -> None:
    conversation = message.conversation
    if consent_set(
        constituent=conversation.constituent,
        consent=SmsConsent.OPTED_OUT,
        source=ConsentSource.CARRIER_21610,
        message_sid=message.provider_sid or "",
        note="Twilio refused the send: the recipient has opted out (21610).",
    ):
        event_record(
            conversation=conversation, kind=EventKind.CONSENT, actor=None, data={"consent": "opted_out"}
        )


def _advance(message: Message, status: str, *, error_code: int | None) -> bool:
    """Move ``message`` to ``status`` if that is forward in rank. Mutates, does not save."""
    if status not in STATUS_RANK:
        return False
    current = STATUS_RANK.get(message.status, -1)
    if STATUS_RANK[status] <= current:
        return False
    message.status = status
    message.status_updated_at = timezone.now()
    if status in FAILED_STATUSES:
        message.error_code = error_code
        message.error_message = reason_for_code(error_code, "The carrier did not deliver it.")
    return True


@transaction.atomic
def delivery_status_apply(*, callback: DeliveryStatus, signed_for_office_id: int | None = None) -> bool:
    """Keep a raw status callback and apply it if its message is known; else park it. Returns applied?

    ``signed_for_office_id``: the office whose own subaccount token signed the callback (None: the
    deployment's token). Such a callback applies only to that office's messages, now or once parked.
    """
    raw = StatusCallback.objects.create(
        office_id=signed_for_office_id,
        provider_sid=callback.message_sid,
        status=callback.message_status,
        error_code=callback.error_code,
        payload=callback.raw,
    )
    scope = {"office_id": signed_for_office_id} if signed_for_office_id is not None else {}
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("conversation__constituent")
        .filter(provider_sid=callback.message_sid, direction=Direction.OUTBOUND, **scope)
        .first()
    )
    if message is None:
        return False  # parked: applied when the send records this SID, or by the sweeper
    _apply(message, [raw])
    return True


def _apply(message: Message, callbacks: list[StatusCallback]) -> None:
    changed = False
    for callback in callbacks:
        changed |= _advance(message, callback.status, error_code=callback.error_code)
        if callback.error_code == OPTED_OUT_ERROR:
            _carrier_opt_out(message)
    if changed:
        message.save(update_fields=["status", "status_updated_at", "error_code", "error_message"])
    StatusCallback.objects.filter(pk__in=[c.pk for c in callbacks]).update(
        applied_at=timezone.now(), office_id=message.office_id
    )


def _apply_parked(message: Message) -> int:
    # A parked callback that carries an office was signed with that office's subaccount token: it may
    # apply only to that office's message (one with none was signed with the deployment's token).
    parked = list(
        StatusCallback.objects.filter(provider_sid=message.provider_sid, applied_at__isnull=True)
        .filter(Q(office__isnull=True) | Q(office_id=message.office_id))
        .order_by("pk")
    )
    if parked:
        _apply(message, parked)
    return len(parked)


# Parked callbacks older than this are kept (as evidence) but no longer matched on every sweep.
PARKED_MATCH_WINDOW = timedelta(days=2)


@transaction.atomic
def parked_callbacks_apply(*, limit: int = 500) -> int:
    """Apply parked callbacks whose message SID is now known. Returns how many were applied."""
    recent_parked = StatusCallback.objects.filter(
        applied_at__isnull=True, received_at__gte=timezone.now() - PARKED_MATCH_WINDOW
    )
    # Only messages a parked callback may apply to: one parked by another office's subaccount never will, and
    # must not take a place in every sweep's batch. The IN drives the plan from the few parked SIDs to the
    # message index; the EXISTS alone (its OR refers to both tables) was planned as a scan of every message.
    applicable = recent_parked.filter(provider_sid=OuterRef("provider_sid")).filter(
        Q(office__isnull=True) | Q(office_id=OuterRef("office_id"))
    )
    messages = (
        Message.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("conversation__constituent")
        .filter(provider_sid__in=recent_parked.values("provider_sid"), direction=Direction.OUTBOUND)
        .filter(Exists(applicable))[:limit]
    )
    applied = 0
    for message in messages:
        applied += _apply_parked(message)
    return applied


# A retryable error's reason promises a retry ("...; it will be retried."); once we give up, that promise is
# no longer true, so the failure shown to staff states only the cause.
_RETRY_PROMISE_RE = re.compile(r"[;,.]?\s*(?:it|the message) will be retried\.?\s*$", re.IGNORECASE)


def give_up_reason(*, reason: str, attempts: int | None = None) -> str:
    """What staff read on a send that failed on every try: the cause, without the retry it promised."""
    cause = _RETRY_PROMISE_RE.sub("", reason).strip().rstrip(".")
    tries = f"{attempts} tries" if attempts else "several tries"
    return f"Twilio was unavailable after {tries}: {cause}. Not sent; try again later."


def delivery_give_up(*, message_id: int, reason: str, attempts: int | None = None) -> None:
    """After the last retry of a transient error: fail the message with a reason staff can act on.

    ``reason`` is the last error's; ``attempts``, how many sends were tried (the first and its retries).
    """
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("conversation__constituent")
            .filter(pk=message_id, status=MessageStatus.QUEUED)
            .first()
        )
        if message is not None:
            _fail(message, None, give_up_reason(reason=reason, attempts=attempts))


def message_reconcile(*, message_id: int) -> str:
    """Ask Twilio what became of a message whose send outcome is unknown. Never resends. Network I/O."""
    message = Message.objects.filter(
        pk=message_id, direction=Direction.OUTBOUND, status=MessageStatus.UNKNOWN
    ).first()
    if message is None:
        return "nothing-to-do"
    number = office_phone_number_for(e164=message.from_number)
    if number is None:
        return "no-number"
    credentials = twilio_credentials_for(phone_number=number)
    started = message.status_updated_at or message.created_at
    # Search from when the text was written: the send left after that, while ``status_updated_at`` may
    # be when the stale-send sweep marked it unknown, minutes after it left.
    search_from = min(message.created_at, started)
    candidates = get_backend().find_sent(
        account_sid=credentials.account_sid,
        auth_token=credentials.auth_token,
        to=message.to_number,
        from_number=None if number.messaging_service_sid else number.e164,
        date_sent_after=search_from - timedelta(minutes=2),
    )
    # Ours is the one with our exact body that no other message of ours has claimed.
    claimed = set(
        Message.objects.filter(provider_sid__in=[c.sid for c in candidates]).values_list(
            "provider_sid", flat=True
        )
    )
    found = next((c for c in candidates if c.body == message.body and c.sid not in claimed), None)
    if found is not None:
        with transaction.atomic():
            locked = Message.objects.select_for_update().get(pk=message.pk)
            if locked.status == MessageStatus.UNKNOWN:
                locked.status = MessageStatus.SENDING  # rank below every reported outcome
                locked.save(update_fields=["status"])
        _record_sid(message_id=message.pk, sid=found.sid, status=found.status, segments=found.num_segments)
        return "found"
    if timezone.now() - started > RECONCILE_GIVE_UP_AFTER:
        with transaction.atomic():
            locked = (
                Message.objects.select_for_update()
                .select_related("conversation__constituent")
                .get(pk=message.pk)
            )
            if locked.status == MessageStatus.UNKNOWN:
                _fail(
                    locked,
                    None,
                    "We could not confirm this text reached Twilio, so it was not resent. Check with the "
                    "constituent before sending it again.",
                )
        return "gave-up"
    return "not-found-yet"


def stale_sends_mark_unknown(*, now: datetime | None = None) -> int:
    """Rows stuck in ``sending`` (a worker died mid-send) become ``unknown``, for the reconciler."""
    cutoff = (now or timezone.now()) - SENDING_STALE_AFTER
    return Message.objects.filter(
        direction=Direction.OUTBOUND,
        status=MessageStatus.SENDING,
        provider_sid__isnull=True,
        status_updated_at__lt=cutoff,
    ).update(status=MessageStatus.UNKNOWN, status_updated_at=timezone.now())
