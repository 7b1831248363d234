"""Voicemails: one ``Message(channel="voicemail", provider_sid=RecordingSid)`` per recording, in the call's
thread.

Three webhooks tell us about a recording, in any order: the ``<Record>`` action (the caller finished), the
recording status callback (the file is ready, or was empty) and the transcription callback. Each one
upserts the voicemail row by RecordingSid under the call row's lock (call first, then voicemail, always),
and merges its facts into ``details``. The transcript state is then derived from the facts alone
(:func:`transcript_state`), so every arrival order ends in the same state:

- Twilio transcribes only English recordings of 2-120 s, and only when we asked (``<Record transcribe>``);
- anything else, or a Twilio transcription that failed or never came, goes to ``TRANSCRIPTION_BACKEND``
  once the audio is stored (``messages.transcription``);
- with neither, the voicemail shows "No transcript".

A recording or transcription callback for a call we have not stored yet is parked (see :mod:`.parking`):
those callbacks carry no caller or office number to place it with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from civicdesk.queueing import enqueue_on_commit
from messages.models import (
    CallInCampaign,
    Channel,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageStatus,
    Tag,
    TranscriptStatus,
    TriageQueue,
)
from messages.services.threading import conversation_touch, preview_for
from messages.services.triage import (
    TriageRejected,
    conversation_move_queue,
    conversation_reopen,
    conversation_tag,
)
from messages.services.voice import flow
from messages.services.voice.calls import VoiceResult, call_row_for, call_save
from messages.services.voice.config import voice_config
from messages.services.voice.steps import DEFAULT_LANGUAGE
from messages.transcription import get_transcription_backend
from messages.twilio.media import is_twilio_recording_url
from messages.twilio.payloads import InboundCall, RecordingStatus, RecordResult, TranscriptionResult
from offices.selectors import ivr_option_get

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


def _locked_voicemail(recording_sid: str) -> Message | None:
    return Message.objects.select_for_update().filter(provider_sid=recording_sid).first()


def _voicemail_for(call: Message, recording_sid: str, *, at: datetime) -> Message | None:
    """The recording's voicemail row, locked; if there is none yet, a new unsaved one in the call's thread
    (``_merge`` inserts it with its first facts). None when the SID belongs to another call."""
    voicemail = _locked_voicemail(recording_sid)
    if voicemail is not None:
        if voicemail.channel != Channel.VOICEMAIL or voicemail.details.get("call_sid") != call.provider_sid:
            logger.warning(
                "recording %s does not belong to call %s: ignored", recording_sid, call.provider_sid
            )
            return None
        return voicemail
    voicemail = Message(
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
    return voicemail


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


def _merge(call: Message, voicemail: Message, facts: _Facts, *, at: datetime) -> None:
    call_before = dict(call.details)
    details = voicemail.details
    was_ready = details.get("recording_status") == "completed"
    if facts.plan is not None:
        plan = facts.plan
        details.setdefault("language", plan.language)
        details["twilio_transcription"] = bool(details.get("twilio_transcription")) or plan.twilio_transcribes
        if plan.topic and not details.get("topic_token"):
            details["topic_token"] = plan.topic
            _topic_apply(call, voicemail, plan.topic)
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
    transcribed = bool(details.get("transcript_source"))
    if facts.transcription is not None:
        _transcription_merge(voicemail, facts.transcription)
    if details.get("recording_status") in RECORDING_HAS_NO_AUDIO and details.get("audio") == Audio.PENDING:
        details["audio"] = Audio.NONE
    backend = get_transcription_backend()
    status, needs_backend = transcript_state(details, backend_enabled=backend.is_enabled)
    details["transcript_status"] = status.value
    if voicemail.pk is None:
        # No savepoint: every webhook about this recording holds the call row's lock (taken first, always),
        # so no one else can insert this RecordingSid now; a unique violation would be a real error.
        voicemail.save(force_insert=True)
        # Unlike the call itself, a voicemail asks for staff: the thread turns unread (a snoozed one wakes,
        # and one closed while the caller was on the line opens again).
        conversation = call.conversation
        if conversation.status == ConversationStatus.CLOSED:
            try:
                conversation_reopen(conversation=conversation, actor=None)
            except TriageRejected as exc:  # the constituent has another open thread by now
                logger.info(
                    "voicemail %s stays in closed thread %s: %s", voicemail.pk, conversation.pk, exc.reason
                )
        conversation_touch(conversation=conversation, message=voicemail)
    else:
        voicemail.save(update_fields=["body", "duration_seconds", "details"])
    if details.get("transcript_source") and not transcribed:
        preview_refresh(voicemail)

    recordings = set(call.details.get("recordings", []))
    if details.get("recording_status") in RECORDING_HAS_NO_AUDIO:
        recordings.discard(voicemail.provider_sid)
    else:
        recordings.add(voicemail.provider_sid)
    call.details["recordings"] = sorted(recordings)
    if call.details != call_before:  # most callbacks after the first change only the voicemail
        call_save(call, at=at)

    from messages import tasks  # tasks import services: import here to keep the import graph one-way

    # Fetch once the recording is ready: the status callback says so; the <Record> action's URL may not be
    # downloadable yet (https://www.twilio.com/docs/voice/twiml/record#action). The sweeper covers a lost one.
    ready = details.get("recording_status") == "completed"
    if ready and not was_ready and details.get("audio") == Audio.PENDING and details.get("recording_url"):
        enqueue_on_commit(tasks.voicemail_audio_download, voicemail.pk)
    if needs_backend and details.get("audio") == Audio.STORED:
        enqueue_on_commit(tasks.voicemail_transcribe, voicemail.pk)


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


def _topic_apply(call: Message, voicemail: Message, token: str) -> None:
    """The caller chose a topic: note it, tag the thread with its issue, and put it in its queue (if none)."""
    office = call.office
    tag: Tag | None = None
    queue: TriageQueue | None = None
    name = ""
    config = voice_config(office=office)
    key = int(token[1:]) if token[1:].isdigit() and len(token) <= 19 else None
    if token.startswith("o") and key is not None:
        option = config.options.get(key) or ivr_option_get(office=office, pk=key)
        if option is not None:
            name = option.topic
            if option.topic:
                tag = config.tags.get(option.topic.lower())
            if option.queue_name:
                queue = config.queues.get(option.queue_name.lower())
    elif token.startswith("c") and key is not None:
        campaign = config.campaign if config.campaign is not None and config.campaign.pk == key else None
        if campaign is None:  # no longer the active one
            campaign = CallInCampaign.objects.filter(office=office, pk=key).select_related("tag").first()
        if campaign is not None:
            tag, name = campaign.tag, campaign.tag.name
    if not name:
        return
    voicemail.details["topic"] = name
    call.details["topic"] = name
    # Through the triage services, as a staff member's tagging would go: same events, same rail counts.
    conversation = call.conversation
    if tag is not None:
        conversation_tag(conversation=conversation, tag=tag, actor=None)
    if queue is not None and conversation.queue_id is None:  # never override where staff put it
        conversation_move_queue(conversation=conversation, queue=queue, actor=None)


def _apply(call: Message, recording_sid: str, facts: _Facts, *, at: datetime) -> Message | None:
    voicemail = _voicemail_for(call, recording_sid, at=at)
    if voicemail is not None:
        _merge(call, voicemail, facts, at=at)
    return voicemail


# --- webhooks ----------------------------------------------------------------------------------------------


@transaction.atomic
def voicemail_record(
    *, record: RecordResult, context: InboundCall | None, plan: VoicemailPlan, at: datetime | None = None
) -> VoiceResult:
    """The caller finished recording (the <Record> action): store the voicemail, say goodbye.

    Locks the call and voicemail rows; enqueues the audio download on commit. Idempotent on RecordingSid.
    """
    now = at or timezone.now()
    call = call_row_for(call_sid=record.call_sid, context=context, at=now)
    if call is None:
        logger.warning(
            "recording %s of unknown call %s with no office number", record.recording_sid, record.call_sid
        )
        return VoiceResult(flow.goodbye_step(config=None, menu_id=None), None)
    facts = _Facts(plan=plan, recording_url=record.recording_url, duration=record.recording_duration)
    _apply(call, record.recording_sid, facts, at=now)
    return VoiceResult(flow.goodbye_step(config=voice_config(office=call.office), menu_id=plan.menu_id), call)


@transaction.atomic
def recording_status_apply(
    *, recording: RecordingStatus, plan: VoicemailPlan, at: datetime | None = None
) -> Message | None:
    """The recording status callback: the file is ready (or empty). Parks it if the call is not stored yet.

    Locks the call and voicemail rows; enqueues the audio download on commit. Idempotent on RecordingSid.
    """
    now = at or timezone.now()
    call = call_row_for(call_sid=recording.call_sid, context=None, at=now)
    if call is None:
        from messages.services.voice.parking import callback_park

        callback_park(
            call_sid=recording.call_sid, kind="recording", payload=recording.raw, query=plan_query(plan)
        )
        return None
    return recording_status_merge(call, recording, plan, at=now)


def recording_status_merge(
    call: Message, recording: RecordingStatus, plan: VoicemailPlan, *, at: datetime
) -> Message | None:
    facts = _Facts(
        plan=plan,
        recording_url=recording.recording_url,
        recording_status=recording.recording_status,
        duration=recording.recording_duration,
    )
    if (
        recording.recording_status in RECORDING_HAS_NO_AUDIO
        and _locked_voicemail(recording.recording_sid) is None
    ):
        # An empty recording ("absent": the caller hung up at the beep) is no voicemail.
        call.details["recording_status"] = recording.recording_status
        call_save(call, at=at)
        return None
    if recording.recording_status not in RECORDING_DONE:
        return None  # "in-progress": we did not ask for it, and it changes nothing
    return _apply(call, recording.recording_sid, facts, at=at)


@transaction.atomic
def transcription_apply(
    *, transcription: TranscriptionResult, plan: VoicemailPlan, at: datetime | None = None
) -> Message | None:
    """Twilio's transcription callback: attach the text (idempotent on TranscriptionSid), or note the failure
    so the transcription backend takes over. Parks it if the call is not stored yet."""
    now = at or timezone.now()
    call = call_row_for(call_sid=transcription.call_sid, context=None, at=now)
    if call is None:
        from messages.services.voice.parking import callback_park

        callback_park(
            call_sid=transcription.call_sid,
            kind="transcription",
            payload=transcription.raw,
            query=plan_query(plan),
        )
        return None
    return transcription_merge(call, transcription, plan, at=now)


def transcription_merge(
    call: Message, transcription: TranscriptionResult, plan: VoicemailPlan, *, at: datetime
) -> Message | None:
    return _apply(call, transcription.recording_sid, _Facts(plan=plan, transcription=transcription), at=at)


# --- plans in URLs -----------------------------------------------------------------------------------------


def plan_query(plan: VoicemailPlan) -> dict[str, str]:
    query = {"topic": plan.topic, "lang": plan.language, "tx": "1" if plan.twilio_transcribes else "0"}
    if plan.menu_id is not None:
        query["menu"] = str(plan.menu_id)
    return query


def plan_from_query(query: dict[str, str]) -> VoicemailPlan:
    """The plan from our callback URL's parameters; anything malformed falls back to a safe default."""
    topic = query.get("topic", "")
    if not (len(topic) <= 20 and topic[:1] in ("o", "c") and topic[1:].isdigit()):
        topic = ""
    language = query.get("lang", "")
    if not (2 <= len(language) <= 16 and all(ch.isalnum() or ch == "-" for ch in language)):
        language = DEFAULT_LANGUAGE
    menu = query.get("menu", "")
    return VoicemailPlan(
        topic=topic,
        language=language,
        twilio_transcribes=query.get("tx") == "1",
        menu_id=int(menu) if menu.isdigit() and len(menu) <= 18 else None,
    )


def preview_refresh(voicemail: Message) -> None:
    """Show the transcript as the thread's preview, if the voicemail is still its latest message."""
    Conversation.objects.filter(
        pk=voicemail.conversation_id,
        last_activity_at=voicemail.created_at,
        last_message_channel=Channel.VOICEMAIL,
    ).update(last_message_preview=preview_for(voicemail))
