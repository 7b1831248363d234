"""What a caller hears next: the vocabulary between the call flow (services) and TwiML (twilio.voice_twiml).

The services decide *what* happens (ask the menu again, ring staff, take a voicemail, hang up); the
``voice.twiml`` module alone decides how that is spelled in TwiML, and builds the callback
URLs. Every step is a frozen value, so a webhook's answer is a pure function of its decision.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_VOICE = "Polly.Joanna"
DEFAULT_LANGUAGE = "en-US"


@dataclass(frozen=True, slots=True)
class AudioRef:
    """An uploaded IVR recording: ``field`` of menu ``menu_id``, stored as ``name`` (new on each upload)."""

    office_id: int
    menu_id: int
    field: str  # "greeting_audio" or "after_hours_audio"
    name: str


@dataclass(frozen=True, slots=True)
class Utterance:
    """One thing said to the caller: ``audio`` is played if set, else ``text`` is spoken."""

    text: str = ""
    audio: AudioRef | None = None
    voice: str = DEFAULT_VOICE
    language: str = DEFAULT_LANGUAGE


@dataclass(frozen=True, slots=True)
class MenuStep:
    """Play ``say`` and wait for a choice by keypad (and speech, if ``speech``)."""

    node: str  # what the choice answers: "menu-<id>" or "callin-<id>"
    step: int  # the choice's position in the call's menu path
    attempt: int  # 1 the first time this menu is asked, then 2, 3...
    say: tuple[Utterance, ...]
    speech: bool
    hints: tuple[str, ...]
    timeout: int
    language: str


@dataclass(frozen=True, slots=True)
class DialStep:
    """Play ``say``, then ring every number at once; the first to answer takes the call."""

    call_sid: str
    step: int
    menu_id: int | None
    say: tuple[Utterance, ...]
    numbers: tuple[str, ...]
    timeout: int


@dataclass(frozen=True, slots=True)
class RecordStep:
    """Play ``say``, beep, and record a voicemail; then say ``goodbye`` and hang up."""

    step: int
    menu_id: int | None
    say: tuple[Utterance, ...]
    goodbye: Utterance
    max_seconds: int
    topic: str  # "o<option id>", "c<campaign id>" or "" (no topic)
    language: str
    twilio_transcribes: bool  # ask Twilio's built-in transcription (English, 2-120 s only)


@dataclass(frozen=True, slots=True)
class HangupStep:
    """Play ``say`` and end the call."""

    say: tuple[Utterance, ...] = ()


@dataclass(frozen=True, slots=True)
class AnnounceStep:
    """Play ``say`` and end the document: for the staff leg of a <Dial>, the call is then connected."""

    say: tuple[Utterance, ...] = ()


Step = MenuStep | DialStep | RecordStep | HangupStep | AnnounceStep
