"""Follow-up work on an inbound text, run by a worker: keywords and consent, auto-replies, media download.

Runs at least once (the sweeper may re-enqueue it), so every effect is idempotent: the row lock plus
``processed_at`` make a second run a no-op, and system replies carry idempotency keys.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from common.deadletters import Delivery, dead_letter_record
from common.queueing import enqueue_on_commit
from constituents.models import ConsentSource, SmsConsent
from constituents.services import consent_set
from messages.arrivals import message_arrived_on_commit
from messages.keywords import Keyword, classify_keyword, keyword_from_opt_out_type
from messages.models import Channel, Conversation, EventKind, Media, MediaStatus, Message
from messages.services.events import event_record
from messages.services.replies import ReplyRejected, system_reply_send
from offices.selectors import office_number_route_for

logger = logging.getLogger(__name__)

# The name a dead-lettered inbound message is recorded under (common.models.DeadLetter.task_name); its one
# argument is the message id.
DEAD_LETTER_TASK_NAME = "messages.inbound_process"


@transaction.atomic
def inbound_process(*, message_id: int) -> bool:
    """Process one inbound message once. Locks it; may change consent, queue replies and media downloads."""
    message = (
        Message.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("conversation__constituent", "office")
        .filter(pk=message_id, direction="inbound", processed_at__isnull=True)
        .first()
    )
    if message is None:  # done already, or another worker holds it
        return False
    conversation = message.conversation
    constituent = conversation.constituent
    office = message.office

    route = office_number_route_for(e164=message.to_number)
    is_toll_free = route.is_toll_free if route is not None else False
    advanced_opt_out = keyword_from_opt_out_type(message.details.get("opt_out_type", ""))
    keyword = advanced_opt_out or classify_keyword(message.body, is_toll_free=is_toll_free)

    if keyword is not None:
        # With Advanced Opt-Out Twilio sends OptOutType and has already replied; we must not reply again.
        source = ConsentSource.TWILIO_ADVANCED_OPT_OUT if advanced_opt_out else ConsentSource.KEYWORD
        word = message.body.strip()[:32]
        if keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
            new = SmsConsent.OPTED_OUT if keyword is Keyword.OPT_OUT else SmsConsent.OPTED_IN
            if consent_set(
                constituent=constituent,
                consent=new,
                source=source,
                keyword=word,
                message_sid=message.provider_sid or "",
            ):
                event_record(
                    conversation=conversation, kind=EventKind.CONSENT, actor=None, data={"consent": new}
                )
        elif keyword is Keyword.HELP and advanced_opt_out is None and office.sms_help_text:
            _system_reply(conversation, office.sms_help_text, key=f"help:{message.provider_sid}")
    elif office.sms_auto_ack_text and not constituent.is_opted_out:
        _auto_ack(conversation, office.sms_auto_ack_text)

    pending_media = list(
        Media.objects.filter(message=message, status=MediaStatus.PENDING).values_list("pk", flat=True)
    )
    if pending_media:
        from messages import tasks  # tasks import services; keep the import graph one-way at load time

        for media_id in pending_media:
            enqueue_on_commit(tasks.media_download, media_id)

    message.processed_at = timezone.now()
    message.save(update_fields=["processed_at"])
    if keyword is None:
        # A keyword (STOP, HELP, START) is compliance, not something the constituent wrote to the office.
        message_arrived_on_commit(message.pk)
    return True


def inbound_process_batch(*, message_ids: list[int]) -> int:
    """Process these inbound messages (those still pending); returns how many this call processed."""
    _last, processed = _process_rows(_pending().filter(pk__in=message_ids))
    return processed


def inbound_process_pending(
    *, after: int = 0, limit: int = 200, failed: set[int] | None = None
) -> tuple[int | None, int]:
    """Process up to ``limit`` pending inbound messages with ids above ``after``, oldest first.

    Messages in ``failed`` are passed over, and the ids of those whose processing raises are added to it.
    Returns (the last id looked at, or None if there was none; how many this call processed).
    """
    pending = _pending().filter(pk__gt=after)
    if failed:
        pending = pending.exclude(pk__in=failed)
    return _process_rows(pending[:limit], failed=failed)


def _pending() -> QuerySet[Message]:
    """Inbound messages still to process, oldest first; a dead-lettered one (see :func:`_start_counted`) is
    not pending any more: it waits for an operator."""
    return Message.objects.filter(
        direction="inbound",
        processed_at__isnull=True,
        processing_starts__lte=settings.CELERY_TASK_MAX_DELIVERIES,
    ).order_by("pk")


def _start_counted(pk: int) -> bool:
    """Count one start of this message's processing, committed before the work begins; False if it must not
    run: processed meanwhile, being processed by another drain, or started more than
    ``CELERY_TASK_MAX_DELIVERIES`` times (dead-lettered now).

    A message whose processing kills its worker process (memory, a crash) would otherwise kill every drain
    that reaches it, and a drain reads from the oldest pending message, so every text after it would wait
    forever. Counting in its own statement, committed on its own (drains run outside any transaction), is
    what makes a start whose worker died count: the processing transaction it precedes is rolled back with
    the worker, the count is not. A processing that
    raises counts the same way, so a message that fails every time stops being retried at every sweep.
    """
    table, starts = Message._meta.db_table, Message._meta.get_field("processing_starts").column
    with connection.cursor() as cursor:
        # SKIP LOCKED: a text another drain is processing right now (it holds the row) is neither counted
        # again nor processed here, so overlapping drains do not inflate the count towards a dead letter.
        cursor.execute(
            f'UPDATE "{table}" SET "{starts}" = "{starts}" + 1 WHERE "id" = ('  # noqa: S608 - the model's names
            f'SELECT "id" FROM "{table}" WHERE "id" = %s AND "processed_at" IS NULL FOR UPDATE SKIP LOCKED) '
            f'RETURNING "{starts}", "created_at"',
            [pk],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    count, created_at = row
    if count <= settings.CELERY_TASK_MAX_DELIVERIES:
        return True
    dead_letter_record(
        task_name=DEAD_LETTER_TASK_NAME,
        task_id=f"inbound-message-{pk}",
        retries=0,
        args=[pk],
        kwargs={},
        delivery=Delivery(count=count, first_seen_at=created_at, last_error=""),
        now=timezone.now(),
    )
    return False


def _process_rows(pending: QuerySet[Message], *, failed: set[int] | None = None) -> tuple[int | None, int]:
    """Most texts need nothing but the mark: no keyword, no media, and no auto-acknowledgement due (the
    thread has had its one, the office has none, or the constituent opted out). Those are recognised from
    the one query that reads the batch, and marked with one UPDATE, which is what lets one worker keep up
    with hundreds of texts a second. The rest go one by one through :func:`inbound_process`, in a
    transaction each. A message whose processing raises is logged and left pending (and added to
    ``failed``): the sweeper retries it, and it does not hold up the others.
    """
    rows = pending.values_list(
        "pk",
        "body",
        "channel",
        "to_number",
        "details__opt_out_type",
        "conversation__auto_ack_sent_at",
        "conversation__constituent__sms_consent",
        "office__sms_auto_ack_text",
    )
    last: int | None = None
    trivial: list[int] = []
    involved: list[int] = []
    for pk, body, channel, to_number, opt_out_type, acked_at, consent, ack_text in rows:
        last = pk
        route = office_number_route_for(e164=to_number)
        keyword = keyword_from_opt_out_type(opt_out_type or "") or classify_keyword(
            body, is_toll_free=route.is_toll_free if route is not None else False
        )
        ack_due = bool(ack_text) and acked_at is None and consent != SmsConsent.OPTED_OUT
        if keyword is None and not ack_due and channel != Channel.MMS:
            trivial.append(pk)
        else:
            involved.append(pk)
    done = 0
    if trivial:
        done += Message.objects.filter(pk__in=trivial, processed_at__isnull=True).update(
            processed_at=timezone.now()
        )
        for pk in trivial:  # a hook is idempotent, so one a concurrent worker marked first may repeat
            message_arrived_on_commit(pk)
    for pk in involved:
        if not _start_counted(pk):
            continue
        try:
            done += inbound_process(message_id=pk)
        except Exception:
            logger.exception("processing inbound message %s failed; the sweeper will retry it", pk)
            if failed is not None:
                failed.add(pk)
    return last, done


def _auto_ack(conversation: Conversation, text: str) -> None:
    """At most once per conversation: the thread row lock serialises concurrent first messages."""
    locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if locked.auto_ack_sent_at is not None:
        return
    if _system_reply(locked, text, key=f"ack:{locked.pk}"):
        locked.auto_ack_sent_at = timezone.now()
        locked.save(update_fields=["auto_ack_sent_at"])


def _system_reply(conversation: Conversation, text: str, *, key: str) -> bool:
    try:
        system_reply_send(conversation=conversation, body=text, idempotency_key=key)
    except ReplyRejected as exc:
        logger.info("system reply on conversation %s not sent: %s", conversation.pk, exc.reason)
        return False
    return True
