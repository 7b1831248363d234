"""The recording backends against a local fake of Twilio's Recording API (real SDK, real SSRF-safe fetcher),
and the transcription backends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from messages.twilio.errors import MediaRejected, PermanentSendError, RetryableSendError
from messages.twilio.media import is_twilio_recording_url
from voice.transcription import (
    NoTranscriptionBackend,
    SimulatorTranscriptionBackend,
    get_transcription_backend,
)
from voice.twilio.backends import (
    LocmemRecordingBackend,
    SimulatorRecordingBackend,
    TwilioRecordingBackend,
    get_recording_backend,
    simulated_audio,
)

ACCOUNT = "AC" + "0" * 32
RECORDING = "RE" + "5" * 32
URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}"


class FakeRecordings(BaseHTTPRequestHandler):
    recordings: dict[str, bytes] = {}
    requests: list[tuple[str, str]] = []
    fail_with: list[int] = []

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.requests.append(("GET", self.path))
        sid = self.path.rsplit("/", 1)[-1].removesuffix(".mp3")
        if self.path.endswith(".mp3") and sid in self.recordings:
            self._answer(200, self.recordings[sid], "audio/mpeg")
        else:
            self._answer(404, b'{"code": 20404, "message": "not found", "status": 404}')

    def do_DELETE(self) -> None:
        self.requests.append(("DELETE", self.path))
        if self.fail_with:
            status = self.fail_with.pop(0)
            self._answer(status, b'{"code": 20003, "message": "nope", "status": %d}' % status)
            return
        sid = self.path.rsplit("/", 1)[-1].removesuffix(".json")
        if self.recordings.pop(sid, None) is None:
            self._answer(404, b'{"code": 20404, "message": "not found", "status": 404}')
        else:
            self._answer(204)


@pytest.fixture
def fake(settings: Any) -> Iterator[type[FakeRecordings]]:
    FakeRecordings.recordings = {RECORDING: b"ID3\x03fake-mp3-bytes"}
    FakeRecordings.requests = []
    FakeRecordings.fail_with = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRecordings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield FakeRecordings
    finally:
        server.shutdown()
        server.server_close()


def test_twilio_backend_downloads_the_mp3_through_the_safe_fetcher(fake: type[FakeRecordings]) -> None:
    fetched = TwilioRecordingBackend().fetch(
        recording_url=URL, account_sid=ACCOUNT, auth_token="t", max_bytes=10_000
    )
    assert (fetched.content, fetched.content_type) == (b"ID3\x03fake-mp3-bytes", "audio/mpeg")
    assert fake.requests == [("GET", f"/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}.mp3")]


def test_twilio_backend_refuses_urls_that_are_not_twilio_recordings(fake: type[FakeRecordings]) -> None:
    for url in (
        "https://evil.example/Recordings/" + RECORDING,
        URL + "?x=1",
        URL.replace("https", "http"),
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM{'1' * 32}",
    ):
        with pytest.raises(MediaRejected):
            TwilioRecordingBackend().fetch(
                recording_url=url, account_sid=ACCOUNT, auth_token="t", max_bytes=10_000
            )
    assert fake.requests == []


def test_twilio_backend_deletes_once_and_treats_gone_as_done(fake: type[FakeRecordings]) -> None:
    backend = TwilioRecordingBackend()
    assert backend.delete(recording_sid=RECORDING, account_sid=ACCOUNT, auth_token="t") is True
    assert backend.delete(recording_sid=RECORDING, account_sid=ACCOUNT, auth_token="t") is False
    fake.fail_with = [503, 401]
    with pytest.raises(RetryableSendError):
        backend.delete(recording_sid=RECORDING, account_sid=ACCOUNT, auth_token="t")
    with pytest.raises(PermanentSendError):
        backend.delete(recording_sid=RECORDING, account_sid=ACCOUNT, auth_token="t")
    assert [method for method, _ in fake.requests] == ["DELETE"] * 4


def test_recording_url_pattern() -> None:
    assert is_twilio_recording_url(URL)
    assert is_twilio_recording_url(URL + ".mp3")
    assert is_twilio_recording_url(URL + ".wav")
    assert not is_twilio_recording_url(URL + ".mp3?x")
    assert not is_twilio_recording_url(URL.replace("RE", "XX"))


def test_backend_follows_voice_backend_then_sms_backend(settings: Any) -> None:
    settings.VOICE_BACKEND = ""
    settings.SMS_BACKEND = "simulator"
    assert isinstance(get_recording_backend(), SimulatorRecordingBackend)
    settings.VOICE_BACKEND = "locmem"
    assert isinstance(get_recording_backend(), LocmemRecordingBackend)
    settings.VOICE_BACKEND = "voice.twilio.backends.TwilioRecordingBackend"
    assert isinstance(get_recording_backend(), TwilioRecordingBackend)


def test_simulated_audio_is_a_playable_wav() -> None:
    audio = simulated_audio(0.5)
    assert audio[:4] == b"RIFF"
    assert audio[8:12] == b"WAVE"
    assert len(audio) == 44 + 8000


def test_transcription_backends(settings: Any) -> None:
    settings.TRANSCRIPTION_BACKEND = "none"
    backend = get_transcription_backend()
    assert isinstance(backend, NoTranscriptionBackend)
    assert not backend.is_enabled
    assert backend.transcribe(audio=b"x", content_type="audio/wav", language="en-US") is None
    settings.TRANSCRIPTION_BACKEND = "simulator"
    backend = get_transcription_backend()
    assert isinstance(backend, SimulatorTranscriptionBackend)
    assert backend.is_enabled
    assert "Simulated transcript (es-US" in (
        backend.transcribe(audio=b"x", content_type="audio/wav", language="es-US") or ""
    )
    assert backend.transcribe(audio=b"", content_type="audio/wav", language="en-US") is None
