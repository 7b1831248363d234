"""Where call recordings are downloaded from and deleted, chosen by setting like ``SMS_BACKEND``.

``VOICE_BACKEND`` is an alias or a dotted path to a class taking no arguments; empty means "the same alias
as ``SMS_BACKEND``", so the demo (SMS simulator) simulates recordings too and production uses Twilio:

- ``"twilio"`` -> :class:`TwilioRecordingBackend`: downloads the MP3 through the SSRF-safe fetcher
  (:mod:`messages.twilio.media`) and deletes through the REST API (:mod:`messages.twilio.client`);
- ``"simulator"`` -> :class:`SimulatorRecordingBackend`: offline; every recording is a short generated tone;
- ``"locmem"`` -> :class:`LocmemRecordingBackend`: the simulator, plus a record of deletions and scripted
  failures, for tests.
"""

from __future__ import annotations

import io
import math
import struct
import threading
import wave
from typing import ClassVar, Protocol

from django.conf import settings

from common.backends import backend_load
from messages.twilio import client
from messages.twilio.errors import MediaError, SendError
from messages.twilio.media import FetchedMedia, fetch_media

BACKEND_ALIASES: dict[str, str] = {
    "twilio": "voice.twilio.backends.TwilioRecordingBackend",
    "simulator": "voice.twilio.backends.SimulatorRecordingBackend",
    "locmem": "voice.twilio.backends.LocmemRecordingBackend",
}
RECORDING_CONTENT_TYPES = frozenset({"audio/mpeg", "audio/wav", "audio/x-wav"})


class RecordingBackend(Protocol):
    def fetch(self, *, recording_url: str, account_sid: str, auth_token: str, max_bytes: int) -> FetchedMedia:
        """The recording's audio. Raises the :class:`~messages.twilio.errors.MediaError` subclasses."""
        ...

    def delete(self, *, recording_sid: str, account_sid: str, auth_token: str) -> bool:
        """Delete the provider's copy; False if it was already gone. Raises ``SendError`` subclasses."""
        ...


def get_recording_backend() -> RecordingBackend:
    name = str(getattr(settings, "VOICE_BACKEND", "") or getattr(settings, "SMS_BACKEND", "") or "twilio")
    backend: RecordingBackend = backend_load(name, aliases=BACKEND_ALIASES)
    return backend


class TwilioRecordingBackend:
    def fetch(self, *, recording_url: str, account_sid: str, auth_token: str, max_bytes: int) -> FetchedMedia:
        # The bare recording URL serves WAV; ".mp3" serves MP3 at about a tenth of the size.
        url = recording_url if recording_url.endswith((".mp3", ".wav")) else recording_url + ".mp3"
        return fetch_media(
            url,
            account_sid=account_sid,
            auth_token=auth_token,
            max_bytes=max_bytes,
            allowed_content_types=RECORDING_CONTENT_TYPES,
        )

    def delete(self, *, recording_sid: str, account_sid: str, auth_token: str) -> bool:
        return client.delete_recording(
            account_sid=account_sid, auth_token=auth_token, recording_sid=recording_sid
        )


def simulated_audio(seconds: float = 1.0, *, frequency: float = 440.0, rate: int = 8000) -> bytes:
    """A short, quiet sine tone as 16-bit mono WAV: something a browser can really play."""
    frames = int(seconds * rate)
    samples = (int(3000 * math.sin(2 * math.pi * frequency * i / rate)) for i in range(frames))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack(f"<{frames}h", *samples))
    return buffer.getvalue()


class SimulatorRecordingBackend:
    def fetch(self, *, recording_url: str, account_sid: str, auth_token: str, max_bytes: int) -> FetchedMedia:
        return FetchedMedia(content=simulated_audio(), content_type="audio/wav")

    def delete(self, *, recording_sid: str, account_sid: str, auth_token: str) -> bool:
        return True


class LocmemRecordingBackend(SimulatorRecordingBackend):
    """Test backend: records fetches and deletions; ``fail_next_fetch``/``fail_next_delete`` script errors."""

    fetched: ClassVar[list[str]] = []
    deleted: ClassVar[list[str]] = []
    _lock: ClassVar[threading.Lock] = threading.Lock()
    _fetch_failures: ClassVar[list[MediaError]] = []
    _delete_failures: ClassVar[list[SendError]] = []

    def fetch(self, *, recording_url: str, account_sid: str, auth_token: str, max_bytes: int) -> FetchedMedia:
        with self._lock:
            failure = self._fetch_failures.pop(0) if self._fetch_failures else None
            self.fetched.append(recording_url)
        if failure is not None:
            raise failure
        return super().fetch(
            recording_url=recording_url, account_sid=account_sid, auth_token=auth_token, max_bytes=max_bytes
        )

    def delete(self, *, recording_sid: str, account_sid: str, auth_token: str) -> bool:
        with self._lock:
            failure = self._delete_failures.pop(0) if self._delete_failures else None
            if failure is None:
                already = recording_sid in self.deleted
                self.deleted.append(recording_sid)
        if failure is not None:
            raise failure
        return not already

    @classmethod
    def fail_next_fetch(cls, error: MediaError) -> None:
        with cls._lock:
            cls._fetch_failures.append(error)

    @classmethod
    def fail_next_delete(cls, error: SendError) -> None:
        with cls._lock:
            cls._delete_failures.append(error)

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls.fetched.clear()
            cls.deleted.clear()
            cls._fetch_failures.clear()
            cls._delete_failures.clear()
