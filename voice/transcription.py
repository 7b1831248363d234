"""Transcription of voicemails Twilio does not transcribe, chosen by ``settings.TRANSCRIPTION_BACKEND``.

Twilio's own ``<Record transcribe>`` covers only English recordings of 2-120 seconds
(https://www.twilio.com/docs/voice/twiml/record#transcribe). Everything else (longer messages, Spanish
menus, Twilio transcriptions that failed or never arrived) goes to this backend, run by a Celery worker
after the audio is stored. ``TRANSCRIPTION_BACKEND`` is an alias or a dotted path to a class taking no
arguments, like ``SMS_BACKEND``:

- ``"none"`` (default) -> :class:`NoTranscriptionBackend`: such voicemails show "No transcript";
- ``"simulator"`` -> :class:`SimulatorTranscriptionBackend`: a labelled placeholder text, for the demo.

A real engine (a hosted speech-to-text API, or a local Whisper model) implements
:class:`TranscriptionBackend`: it may do network I/O and take seconds, and raises :class:`TranscriptionRetry`
for a transient failure.
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings

from common.backends import backend_load

BACKEND_ALIASES: dict[str, str] = {
    "none": "voice.transcription.NoTranscriptionBackend",
    "simulator": "voice.transcription.SimulatorTranscriptionBackend",
}


class TranscriptionRetry(Exception):
    """A transient failure (rate limit, timeout): the task tries again later."""


class TranscriptionBackend(Protocol):
    #: Stored as the transcript's source, e.g. "whisper".
    name: str
    #: False for the "none" backend: voicemails it would get are marked "no transcript" at once.
    is_enabled: bool

    def transcribe(self, *, audio: bytes, content_type: str, language: str) -> str | None:
        """The text spoken in ``audio``, or None when there is none (silence, unsupported language)."""
        ...


def get_transcription_backend() -> TranscriptionBackend:
    name = str(getattr(settings, "TRANSCRIPTION_BACKEND", "") or "none")
    backend: TranscriptionBackend = backend_load(name, aliases=BACKEND_ALIASES)
    return backend


class NoTranscriptionBackend:
    name = "none"
    is_enabled = False

    def transcribe(self, *, audio: bytes, content_type: str, language: str) -> str | None:
        return None


class SimulatorTranscriptionBackend:
    """Offline stand-in. It says the text is simulated, so no one takes it for the caller's words."""

    name = "simulator"
    is_enabled = True

    def transcribe(self, *, audio: bytes, content_type: str, language: str) -> str | None:
        if not audio:
            return None
        return (
            f"[Simulated transcript ({language}, {len(audio)} bytes of audio)] "
            "This is where the caller's words would appear."
        )
