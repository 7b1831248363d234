"""Voicemails: one ``Message(channel="voicemail", provider_sid=RecordingSid)`` per recording, in the call's
thread.

Three webhooks tell us about a recording, in any order: the ``<Record>`` action (the caller finished), the
recording status callback (the file is ready, or was empty) and the transcription callback. Each one
upserts the voicemail row by RecordingSid and merges its facts into ``details``. The transcript state is
then derived from the facts alone (:func:`transcript_state`), so every arrival order ends in the same state:

- Twilio transcribes only English recordings of 2-120 s, and only when we asked (``<Record transcribe>``);
- anything else, or a Twilio transcription that failed or never came, goes to ``TRANSCRIPTION_BACKEND``
  once the audio is stored (``voice.transcription``);
- with neither, the voicemail shows "No transcript".

A webhook that creates the voicemail, or changes the call's row too (its topic, its recordings), locks the
call row first, then the voicemail (always in that order). The common later callbacks change the voicemail
alone, and do so with a compare-and-set (:mod:`.rows`): two statements, no lock, no transaction. Work for a
worker (tagging and queueing the thread, the audio download, backend transcription) is noted in the row and
done by the follow-up drain (:mod:`.followups`).

A recording or transcription callback for a call we have not stored yet is parked (see :mod:`.parking`):
those callbacks carry no caller or office number to place it with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from common.ids import MAX_ID_DIGITS
from common.rawsql import insert_params, insert_sql
from messages.arrivals import message_arrived_on_commit
from messages.models import Channel, Conversation, ConversationStatus, Direction, Message, MessageStatus
from messages.services.threading import (
    conversation_preview_refresh,
    conversation_preview_then,
    conversation_touch,
    preview_for,
)
from messages.services.triage import TriageRejected, conversation_reopen
from messages.twilio.media import is_twilio_recording_url
from messages.twilio.payloads import RawParams
from offices.selectors import ivr_option_get
from voice.models import CallInCampaign, TranscriptStatus
from voice.services import flow
from voice.services.calls import CAS_ATTEMPTS, VoiceResult, atomic_retrying, call_row_for, call_save
from voice.services.config import voice_config_for
from voice.services.followups import followup_add, followups_nudge_on_commit
from voice.services.rows import (
    Read,
    message_write,
    message_write_if_unchanged,
    voicemail_locked,
    voicemail_read,
)
from voice.services.steps import DEFAULT_LANGUAGE
from voice.transcription import get_transcription_backend
from voice.twilio.payloads import InboundCall, RecordingStatus, RecordResult, TranscriptionResult

logger = logging.getLogger(__name__)

# A transcript longer than this is not from a voicemail of at most an hour; webhooks refuse it (HTTP 400).
MAX_TRANSCRIPT_CHARS = 10_000
TWILIO_TRANSCRIBES_SECONDS = (2, 120)  # https://www.twilio.com/docs/voice/twiml/record#transcribe


class Audio:
    """``details["audio"]``: where the recording's sound is."""

    PENDING = "pending"  # not downloaded yet
    STORED = "stored"  # in our storage, as Media index 0
    FAILED = "failed"  # gave up downloading
    NONE = "none"  # there is no audio (empty or failed recording)
    DELETED = "deleted"  # removed by the retention policy


RECORDING_DONE = frozenset({"completed", "absent", "failed"})
RECORDING_HAS_NO_AUDIO = frozenset({"absent", "failed"})


@dataclass(frozen=True, slots=True)
class VoicemailPlan:
    """What we asked of Twilio when we answered with ``<Record>``; travels in our own callback URLs."""

    topic: str = ""  # "o<option id>", "c<campaign id>" or ""
    language: str = DEFAULT_LANGUAGE
    twilio_transcribes: bool = False
    menu_id: int | None = None


# --- the voicemail row -----------------------------------------------------------------------------------


def _new_voicemail(call: Message, recording_sid: str, *, at: datetime) -> Message:
    """A new, unsaved voicemail in the call's thread (:func:`_apply` inserts it with its first facts)."""
    return Message(
        office_id=call.office_id,
        conversation_id=call.conversation_id,
        direction=Direction.INBOUND,
        channel=Channel.VOICEMAIL,
        provider_sid=recording_sid,
        status=MessageStatus.RECEIVED,
        from_number=call.from_number,
        to_number=call.to_number,
        created_at=at,
        # Voicemails never go through SMS follow-up processing: a transcript saying "stop" is no opt-out.
        processed_at=at,
        details={
            "call_sid": call.provider_sid,
            "account_sid": call.details.get("account_sid", ""),
            "audio": Audio.PENDING,
            "transcript_status": TranscriptStatus.PENDING,
        },
    )


def _belongs(voicemail: Message, call_sid: str | None) -> bool:
    if voicemail.channel == Channel.VOICEMAIL and voicemail.details.get("call_sid") == call_sid:
        return True
    logger.warning("recording %s does not belong to call %s: ignored", voicemail.provider_sid, call_sid)
    return False


# --- deriving the transcript state ------------------------------------------------------------------------


def twilio_may_transcribe(details: dict[str, Any]) -> bool:
    """True while a transcription from Twilio can still come."""
    if not details.get("twilio_transcription") or details.get("twilio_transcription_failed"):
        return False
    duration = details.get("duration")
    low, high = TWILIO_TRANSCRIBES_SECONDS
    return duration is None or low <= int(duration) <= high


def transcript_state(details: dict[str, Any], *, backend_enabled: bool) -> tuple[TranscriptStatus, bool]:
    """(status, whether the transcription backend should run) from the voicemail's facts."""
    if details.get("transcript_source"):
        return TranscriptStatus.COMPLETED, False
    if details.get("recording_status") in RECORDING_HAS_NO_AUDIO:
        return TranscriptStatus.NONE, False
    if twilio_may_transcribe(details):
        return TranscriptStatus.PENDING, False
    if backend_enabled and not details.get("backend_transcription_done"):
        return TranscriptStatus.PENDING, True
    return TranscriptStatus.NONE, False


def needs_backend_transcription(voicemail: Message) -> bool:
    _, needed = transcript_state(voicemail.details, backend_enabled=get_transcription_backend().is_enabled)
    return needed and voicemail.details.get("audio") == Audio.STORED


# --- merging facts ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Facts:
    plan: VoicemailPlan | None = None
    recording_url: str | None = None
    recording_status: str | None = None
    duration: int | None = None
    transcription: TranscriptionResult | None = None


@dataclass(frozen=True, slots=True)
class _Merged:
    """What a merge changed beyond the voicemail's own columns, for the caller to act on."""

    topic: str  # a topic token to apply now (the first webhook carrying the plan), else ""
    had_audio: bool  # whether the call's "recordings" held this voicemail before the merge
    has_audio: bool  # ... and should after it
    followup: bool  # new work for the follow-up drain: nudge it on commit


def _has_audio(details: dict[str, Any]) -> bool:
    return details.get("recording_status") not in RECORDING_HAS_NO_AUDIO


def _merge(voicemail: Message, facts: _Facts) -> _Merged:
    """Merge one webhook's facts into the voicemail, in memory. The call's side is the caller's to write."""
    details = voicemail.details
    had_audio = _has_audio(details)
    was_ready = details.get("recording_status") == "completed"
    topic = ""
    if facts.plan is not None:
        plan = facts.plan
        details.setdefault("language", plan.language)
        details["twilio_transcription"] = bool(details.get("twilio_transcription")) or plan.twilio_transcribes
        if plan.topic and not details.get("topic_token"):
            details["topic_token"] = topic = plan.topic
    if facts.recording_url and not details.get("recording_url"):
        if is_twilio_recording_url(facts.recording_url):
            details["recording_url"] = facts.recording_url
        else:
            logger.warning(
                "recording %s: URL %.80r is not a Twilio recording URL",
                voicemail.provider_sid,
                facts.recording_url,
            )
    if facts.recording_status in RECORDING_DONE and details.get("recording_status") not in RECORDING_DONE:
        details["recording_status"] = facts.recording_status
    if facts.duration is not None:
        details["duration"] = facts.duration
        voicemail.duration_seconds = facts.duration
    if facts.transcription is not None:
        _transcription_merge(voicemail, facts.transcription)
    if details.get("recording_status") in RECORDING_HAS_NO_AUDIO and details.get("audio") == Audio.PENDING:
        details["audio"] = Audio.NONE
    backend = get_transcription_backend()
    status, needs_backend = transcript_state(details, backend_enabled=backend.is_enabled)
    details["transcript_status"] = status.value
    # Fetch once the recording is ready: the status callback says so; the <Record> action's URL may not be
    # downloadable yet (https://www.twilio.com/docs/voice/twiml/record#action). The sweeper covers a lost one.
    ready = details.get("recording_status") == "completed"
    download = (
        ready and not was_ready and details.get("audio") == Audio.PENDING and details.get("recording_url")
    )
    transcribe = needs_backend and details.get("audio") == Audio.STORED
    followup = followup_add(details, download=bool(download), transcribe=bool(transcribe))
    return _Merged(
        topic=topic,
        had_audio=had_audio,
        has_audio=_has_audio(details),
        followup=followup,
    )


def _transcription_merge(voicemail: Message, transcription: TranscriptionResult) -> None:
    details = voicemail.details
    details["twilio_transcription"] = True  # Twilio only transcribes what we asked it to
    seen = details.setdefault("transcription_sids", [])
    if transcription.transcription_sid in seen:
        return  # the same callback again
    seen.append(transcription.transcription_sid)
    text = (transcription.transcription_text or "").strip()
    if transcription.transcription_status == "completed" and text:
        # Twilio's transcript wins over a backend's that ran while Twilio's was thought lost.
        if details.get("transcript_source") != "twilio":
            voicemail.body = text
            details["transcript_source"] = "twilio"
            details["transcription_sid"] = transcription.transcription_sid
    else:
        details["twilio_transcription_failed"] = transcription.transcription_status or "empty"


def _topic_apply(call: Message, voicemail: Message, token: str) -> bool:
    """The caller chose a topic: note it on the call and the voicemail, and leave the thread's tag and queue
    to the follow-up drain (through the triage services, as a staff member's tagging would go: same events,
    same counts). True if that is new work for the drain."""
    office_id = call.office_id
    config = voice_config_for(office_id=office_id)
    tag_id: int | None = None
    queue_id: int | None = None
    name = ""
    key = int(token[1:]) if token[1:].isdigit() and len(token[1:]) <= MAX_ID_DIGITS else None
    if token.startswith("o") and key is not None:
        option = config.options.get(key) or ivr_option_get(office=config.office, pk=key)
        if option is not None:
            name = option.topic
            tag = config.tags.get(option.topic.lower()) if option.topic else None
            queue = config.queues.get(option.queue_name.lower()) if option.queue_name else None
            tag_id = tag.pk if tag is not None else None
            queue_id = queue.pk if queue is not None else None
    elif token.startswith("c") and key is not None:
        campaign = config.campaign if config.campaign is not None and config.campaign.pk == key else None
        if campaign is None:  # no longer the active one
            campaign = (
                CallInCampaign.objects.filter(office_id=office_id, pk=key).select_related("tag").first()
            )
        if campaign is not None:
            tag_id, name = campaign.tag_id, campaign.tag.name
    if not name:
        return False
    voicemail.details["topic"] = name
    call.details["topic"] = name
    return followup_add(voicemail.details, tag=tag_id, queue=queue_id)


def _apply(call: Read, recording_sid: str, facts: _Facts, *, at: datetime) -> Message | None:
    """Merge ``facts`` into the recording's voicemail, creating it, under the call row's lock (``call``)."""
    call_message = call.message
    read = voicemail_locked(recording_sid)
    if read is not None:
        voicemail = read.message
        if not _belongs(voicemail, call_message.provider_sid):
            return None
    else:
        voicemail = _new_voicemail(call_message, recording_sid, at=at)
    call_before = dict(call_message.details)
    preview_before = preview_for(voicemail)
    merged = _merge(voicemail, facts)
    followup = merged.followup
    if merged.topic:
        followup = _topic_apply(call_message, voicemail, merged.topic) or followup
    if voicemail.pk is None:
        # No savepoint or conflict clause: every webhook that inserts a voicemail holds the call row's lock
        # (taken first, always), so no one else can insert this RecordingSid now; a unique violation would be
        # a real error.
        with connection.cursor() as cursor:
            cursor.execute(_voicemail_insert_sql(), insert_params(voicemail))
            voicemail.pk = cursor.fetchone()[0]
        voicemail._state.adding = False
        # Unlike the call itself, a voicemail asks for staff: the thread turns unread (a snoozed one wakes,
        # and one closed while the caller was on the line opens again).
        if call.conversation_status == ConversationStatus.CLOSED:
            conversation = Conversation.objects.get(pk=voicemail.conversation_id)
            try:
                conversation_reopen(conversation=conversation, actor=None)
            except TriageRejected as exc:  # the constituent has another open thread by now
                logger.info(
                    "voicemail %s stays in closed thread %s: %s", voicemail.pk, conversation.pk, exc.reason
                )
        # The shared summary rules (one UPDATE); only the thread's id is read from the instance.
        thread = Conversation(pk=voicemail.conversation_id, office_id=voicemail.office_id)
        conversation_touch(conversation=thread, message=voicemail)
    else:
        message_write(voicemail)
        if preview_for(voicemail) != preview_before:  # a transcript, or the length, arrived
            preview_refresh(voicemail)

    recordings = set(call_message.details.get("recordings", []))
    if merged.has_audio:
        recordings.add(voicemail.provider_sid)
    else:
        recordings.discard(voicemail.provider_sid)
    call_message.details["recordings"] = sorted(recordings)
    if call_message.details != call_before:  # most callbacks after the first change only the voicemail
        call_save(call_message, at=at)
    if followup:
        followups_nudge_on_commit()
    return voicemail


@cache
def _voicemail_insert_sql() -> str:
    return insert_sql(Message)


def _apply_unlocked(call_sid: str, recording_sid: str, facts: _Facts) -> Message | None:
    """The common callback: merge into a voicemail that exists, when the call's row does not change.

    Two statements and no lock or transaction: read the voicemail, then write it only if unchanged since
    (``rows.message_write_if_unchanged``). None when it must take the locked path: no such voicemail yet, it
    belongs to another call, or the merge changes the call too (a topic, or a recording found empty).
    """
    for _attempt in range(CAS_ATTEMPTS):
        read = voicemail_read(recording_sid)
        if read is None or read.message.details.get("call_sid") != call_sid:
            return None
        voicemail = read.message
        preview_before = preview_for(voicemail)
        plan = facts.plan
        if plan is not None and plan.topic and not voicemail.details.get("topic_token"):
            return None
        merged = _merge(voicemail, facts)
        if merged.had_audio != merged.has_audio:
            return None
        then, params = "", []
        preview = preview_for(voicemail)
        if preview != preview_before:  # show it in the thread, in the same statement, if still the latest
            then, params = conversation_preview_then(Channel.VOICEMAIL), [preview]
        if message_write_if_unchanged(read, then=then, then_params=params):
            if merged.followup:
                followups_nudge_on_commit()
            return voicemail
    return None


# --- webhooks ----------------------------------------------------------------------------------------------


def voicemail_record(
    *, record: RecordResult, context: InboundCall | None, plan: VoicemailPlan, at: datetime | None = None
) -> VoiceResult:
    """The caller finished recording (the <Record> action): store the voicemail, say goodbye.

    Locks the call and voicemail rows; notes the thread's tagging for the follow-up drain, nudged on commit.
    Idempotent on RecordingSid.
    """
    now = at or timezone.now()
    facts = _Facts(plan=plan, recording_url=record.recording_url, duration=record.recording_duration)

    def apply() -> VoiceResult:
        call = call_row_for(call_sid=record.call_sid, context=context, at=now)
        if call is None:
            logger.warning(
                "recording %s of unknown call %s with no office number", record.recording_sid, record.call_sid
            )
            return VoiceResult(flow.goodbye_step(config=None, menu_id=None), None)
        _apply(call, record.recording_sid, facts, at=now)
        config = voice_config_for(office_id=call.message.office_id)
        return VoiceResult(flow.goodbye_step(config=config, menu_id=plan.menu_id), call.message)

    return atomic_retrying(apply)


def recording_status_apply(
    *,
    recording: RecordingStatus,
    plan: VoicemailPlan,
    at: datetime | None = None,
    signed_for_office_id: int | None = None,
) -> Message | None:
    """The recording status callback: the file is ready (or empty). Parks it if the call is not stored yet
    (for ``signed_for_office_id``'s calls only, if an office's subaccount token signed it).

    Usually two statements and no transaction (a compare-and-set of the voicemail); otherwise locks the call
    and voicemail rows. Notes the audio download for the follow-up drain. Idempotent on RecordingSid.
    """
    now = at or timezone.now()
    if recording.recording_status in RECORDING_DONE:
        done = _apply_unlocked(recording.call_sid, recording.recording_sid, _recording_facts(recording, plan))
        if done is not None:
            return done
    return _merge_locked_or_park(
        recording.call_sid,
        kind="recording",
        payload=recording.raw,
        plan=plan,
        at=now,
        signed_for_office_id=signed_for_office_id,
        merge=lambda call: recording_status_merge(call, recording, plan, at=now),
    )


def _merge_locked_or_park(
    call_sid: str,
    *,
    kind: str,
    payload: RawParams,
    plan: VoicemailPlan,
    at: datetime,
    merge: Callable[[Read], Message | None],
    signed_for_office_id: int | None,
) -> Message | None:
    """The locked path of a recording or transcription callback: merge it into the call's voicemail, or
    park it (applied later) if the call is not stored yet."""
    with transaction.atomic():
        call = call_row_for(call_sid=call_sid, context=None, at=at)
        if call is None:
            from voice.services.parking import callback_park  # parking imports voicemail

            callback_park(
                call_sid=call_sid,
                kind=kind,
                payload=payload,
                query=plan_query(plan),
                signed_for_office_id=signed_for_office_id,
            )
            return None
        return merge(call)


def _recording_facts(recording: RecordingStatus, plan: VoicemailPlan) -> _Facts:
    return _Facts(
        plan=plan,
        recording_url=recording.recording_url,
        recording_status=recording.recording_status,
        duration=recording.recording_duration,
    )


def recording_status_merge(
    call: Read, recording: RecordingStatus, plan: VoicemailPlan, *, at: datetime
) -> Message | None:
    if (
        recording.recording_status in RECORDING_HAS_NO_AUDIO
        and voicemail_locked(recording.recording_sid) is None
    ):
        # An empty recording ("absent": the caller hung up at the beep) is no voicemail.
        call.message.details["recording_status"] = recording.recording_status
        call_save(call.message, at=at)
        return None
    if recording.recording_status not in RECORDING_DONE:
        return None  # "in-progress": we did not ask for it, and it changes nothing
    return _apply(call, recording.recording_sid, _recording_facts(recording, plan), at=at)


def transcription_apply(
    *,
    transcription: TranscriptionResult,
    plan: VoicemailPlan,
    at: datetime | None = None,
    signed_for_office_id: int | None = None,
) -> Message | None:
    """Twilio's transcription callback: attach the text (idempotent on TranscriptionSid), or note the failure
    so the transcription backend takes over. Parks it if the call is not stored yet (for
    ``signed_for_office_id``'s calls only, if an office's subaccount token signed it).

    Usually two statements and no transaction (a compare-and-set of the voicemail, with the thread's preview).
    """
    now = at or timezone.now()
    facts = _Facts(plan=plan, transcription=transcription)
    done = _apply_unlocked(transcription.call_sid, transcription.recording_sid, facts)
    if done is None:
        done = _merge_locked_or_park(
            transcription.call_sid,
            kind="transcription",
            payload=transcription.raw,
            plan=plan,
            at=now,
            signed_for_office_id=signed_for_office_id,
            merge=lambda call: transcription_merge(call, transcription, plan, at=now),
        )
    if done is not None and transcription.transcription_text:
        message_arrived_on_commit(done.pk)
    return done


def transcription_merge(
    call: Read, transcription: TranscriptionResult, plan: VoicemailPlan, *, at: datetime
) -> Message | None:
    return _apply(call, transcription.recording_sid, _Facts(plan=plan, transcription=transcription), at=at)


# --- plans in URLs -----------------------------------------------------------------------------------------


def plan_query(plan: VoicemailPlan) -> dict[str, str]:
    query = {"topic": plan.topic, "lang": plan.language, "tx": "1" if plan.twilio_transcribes else "0"}
    if plan.menu_id is not None:
        query["menu"] = str(plan.menu_id)
    return query


_MAX_TOPIC_LENGTH = 20  # "o" or "c" and an id
_LANGUAGE_TAG_LENGTHS = range(2, 17)  # a language tag of 2 to 16 characters: "en", "es-419", "zh-Hant-TW"


def plan_from_query(query: dict[str, str]) -> VoicemailPlan:
    """The plan from our callback URL's parameters; anything malformed falls back to a safe default."""
    topic = query.get("topic", "")
    if not (len(topic) <= _MAX_TOPIC_LENGTH and topic[:1] in ("o", "c") and topic[1:].isdigit()):
        topic = ""
    language = query.get("lang", "")
    if not (len(language) in _LANGUAGE_TAG_LENGTHS and all(ch.isalnum() or ch == "-" for ch in language)):
        language = DEFAULT_LANGUAGE
    menu = query.get("menu", "")
    return VoicemailPlan(
        topic=topic,
        language=language,
        twilio_transcribes=query.get("tx") == "1",
        menu_id=int(menu) if menu.isdigit() and len(menu) <= MAX_ID_DIGITS else None,
    )


def preview_refresh(voicemail: Message) -> None:
    """Show the voicemail's preview (its transcript, else its length) in its thread, if it is still the
    thread's latest message."""
    conversation_preview_refresh(
        conversation_id=voicemail.conversation_id,
        at=voicemail.created_at,
        channel=Channel.VOICEMAIL,
        preview=preview_for(voicemail),
    )
