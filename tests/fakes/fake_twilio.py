"""A local fake of the parts of Twilio's REST API that civicdesk uses, for running the real SDK offline.

Point the app at it with ``settings.TWILIO_API_BASE_URL = fake.base_url``; the SDK then talks HTTP to
this server instead of ``https://api.twilio.com`` (see ``messages.twilio.client``).

Implemented (2010-04-01 API, JSON shaped like Twilio's):

- ``POST /2010-04-01/Accounts/{AC}/Messages.json``   create (201, ``status: queued``)
- ``GET  /2010-04-01/Accounts/{AC}/Messages/{SM}.json``  fetch
- ``GET  /2010-04-01/Accounts/{AC}/Messages.json``   list, filters ``To``, ``From``, ``DateSent>``
- ``GET  /2010-04-01/Accounts/{AC}/Messages/{MM}/Media/{ME}``  307 redirect to ``/cdn/...`` on this server
- ``GET  /cdn/{key}``  the media bytes
- ``GET  /2010-04-01/Accounts/{AC}/Recordings/{RE}[.mp3|.wav]``  a call recording's audio

All API routes check HTTP Basic auth against ``accounts``. Every request is recorded
(:attr:`FakeTwilio.requests`). Responses can be scripted per route with :meth:`FakeTwilio.script`:
each scripted response is used once, in order, by the next request to that route.

Usage::

    with FakeTwilio() as fake:
        fake.script(Scripted.twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"))
        ...
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROUTE_CREATE_MESSAGE = "create_message"
ROUTE_FETCH_MESSAGE = "fetch_message"
ROUTE_LIST_MESSAGES = "list_messages"
ROUTE_MEDIA = "media"
ROUTE_CDN = "cdn"
ROUTE_RECORDING = "recording"

_ACCOUNT = r"(?P<account>AC[0-9a-f]{32})"
_ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    ("POST", ROUTE_CREATE_MESSAGE, re.compile(rf"/2010-04-01/Accounts/{_ACCOUNT}/Messages\.json")),
    ("GET", ROUTE_LIST_MESSAGES, re.compile(rf"/2010-04-01/Accounts/{_ACCOUNT}/Messages\.json")),
    (
        "GET",
        ROUTE_FETCH_MESSAGE,
        re.compile(rf"/2010-04-01/Accounts/{_ACCOUNT}/Messages/(?P<sid>(?:SM|MM)[0-9a-f]{{32}})\.json"),
    ),
    (
        "GET",
        ROUTE_MEDIA,
        re.compile(
            rf"/2010-04-01/Accounts/{_ACCOUNT}/Messages/(?P<sid>(?:SM|MM)[0-9a-f]{{32}})"
            r"/Media/(?P<media>ME[0-9a-f]{32})"
        ),
    ),
    ("GET", ROUTE_CDN, re.compile(r"/cdn/(?P<key>[A-Za-z0-9_-]+)")),
    (
        "GET",
        ROUTE_RECORDING,
        re.compile(
            rf"/2010-04-01/Accounts/{_ACCOUNT}/Recordings/(?P<recording>RE[0-9a-f]{{32}})(?:\.mp3|\.wav)?"
        ),
    ),
]


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def twilio_date(value: datetime) -> str:
    """RFC 2822 in UTC, as Twilio formats ``date_created`` etc."""
    return format_datetime(value.astimezone(UTC))


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    route: str | None
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    auth: tuple[str, str] | None
    headers: dict[str, str]


@dataclass(frozen=True)
class Scripted:
    """One programmed response. ``status=None`` means "handle normally" (after ``delay``)."""

    status: int | None = None
    json_body: Any = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop_connection: bool = False
    apply_before_drop: bool = True
    omit_content_length: bool = False  # body delimited by closing the connection (HTTP/1.0)

    @classmethod
    def twilio_error(cls, status: int, code: int, message: str) -> Scripted:
        """Twilio's JSON error body: ``{"code", "message", "more_info", "status"}``."""
        return cls(
            status=status,
            json_body={
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    @classmethod
    def server_error(cls, status: int = 500) -> Scripted:
        return cls(status=status, json_body={"message": "Internal Server Error", "status": status})

    @classmethod
    def slow(cls, seconds: float) -> Scripted:
        """Handle the request at once (a create still creates!) but answer only after ``seconds``."""
        return cls(delay=seconds)

    @classmethod
    def drop(cls, *, after_handling: bool = True) -> Scripted:
        """Close the connection without answering; by default after the request took effect."""
        return cls(drop_connection=True, apply_before_drop=after_handling)

    @classmethod
    def redirect(cls, location: str, status: int = 307) -> Scripted:
        return cls(status=status, headers={"Location": location}, body=b"")

    @classmethod
    def raw(
        cls, status: int, body: bytes, content_type: str, *, omit_content_length: bool = False
    ) -> Scripted:
        return cls(
            status=status,
            body=body,
            headers={"Content-Type": content_type},
            omit_content_length=omit_content_length,
        )


@dataclass
class _Media:
    content: bytes
    content_type: str


class _Handler(BaseHTTPRequestHandler):
    server: _FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    def do_POST(self) -> None:
        self.server.fake._handle(self)


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeTwilio


class FakeTwilio:
    """Threaded fake Twilio API on ``127.0.0.1:<random port>``; use as a context manager."""

    def __init__(self, *, accounts: Mapping[str, str] | None = None) -> None:
        if accounts is None:
            accounts = {new_sid("AC"): secrets.token_hex(16)}
        self.accounts: dict[str, str] = dict(accounts)
        self.account_sid, self.auth_token = next(iter(self.accounts.items()))
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._script: list[tuple[str | None, Scripted]] = []
        self._messages: dict[str, dict[str, Any]] = {}
        self._media: dict[str, _Media] = {}
        self._recordings: dict[str, _Media] = {}
        self._seq = itertools.count()
        self._server: _FakeServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        server = _FakeServer(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-twilio", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeTwilio is not running"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- programming and inspection ----------------------------------------------------------------

    def script(self, *responses: Scripted, route: str | None = None) -> None:
        """Queue responses for the next requests to ``route`` (any route if ``None``)."""
        with self._lock:
            self._script.extend((route, response) for response in responses)

    def script_clear(self) -> None:
        """Forget the scripted responses no request has used yet (e.g. those a failed test left)."""
        with self._lock:
            self._script.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, route: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.route == route]

    @property
    def messages(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {sid: dict(message) for sid, message in self._messages.items()}

    def add_message(
        self,
        *,
        to: str,
        body: str,
        from_: str = "+15550100001",
        status: str = "delivered",
        date_created: datetime | None = None,
        account_sid: str | None = None,
    ) -> str:
        """Pre-load a message (e.g. one sent "earlier") and return its SID."""
        created = date_created or datetime.now(UTC)
        message = self._message_json(
            account_sid=account_sid or self.account_sid,
            to=to,
            from_=from_,
            body=body,
            status=status,
            created=created,
            messaging_service_sid=None,
            num_media=0,
        )
        with self._lock:
            self._messages[message["sid"]] = message
        return str(message["sid"])

    def set_message_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        with self._lock:
            self._messages[sid]["status"] = status
            self._messages[sid]["error_code"] = error_code

    def add_media(self, content: bytes, content_type: str, *, account_sid: str | None = None) -> str:
        """Store media and return its public URL (``https://api.twilio.com/...``, as in ``MediaUrl0``)."""
        account = account_sid or self.account_sid
        message_sid = new_sid("MM")
        media_sid = new_sid("ME")
        with self._lock:
            self._media[media_sid] = _Media(content, content_type)
        return (
            f"https://api.twilio.com/2010-04-01/Accounts/{account}/Messages/{message_sid}/Media/{media_sid}"
        )

    def add_recording(
        self,
        content: bytes,
        *,
        content_type: str = "audio/mpeg",
        recording_sid: str | None = None,
        account_sid: str | None = None,
    ) -> str:
        """Store a call recording and return its URL as Twilio gives it (``RecordingUrl``, no extension)."""
        account = account_sid or self.account_sid
        sid = recording_sid or new_sid("RE")
        with self._lock:
            self._recordings[sid] = _Media(content, content_type)
        return f"https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{sid}"

    # --- request handling --------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(handler.headers.get("Content-Length") or 0)
        raw_body = handler.rfile.read(length) if length else b""
        form: dict[str, list[str]] = {}
        if "application/x-www-form-urlencoded" in (handler.headers.get("Content-Type") or ""):
            form = parse_qs(raw_body.decode("utf-8"), keep_blank_values=True)
        route, match = self._route(handler.command, parts.path)
        recorded = RecordedRequest(
            method=handler.command,
            path=parts.path,
            route=route,
            query=query,
            form=form,
            auth=_basic_auth(handler.headers.get("Authorization")),
            headers={key: value for key, value in handler.headers.items()},
        )
        with self._lock:
            self._requests.append(recorded)
            scripted = self._pop_script(route)

        try:
            if scripted is not None and scripted.status is not None and not scripted.drop_connection:
                time.sleep(scripted.delay)
                self._send_scripted(handler, scripted)
                return
            # Normal handling. The request takes effect at once (as at Twilio); a scripted delay or drop
            # only affects the answer.
            if scripted is not None and scripted.drop_connection and not scripted.apply_before_drop:
                handler.close_connection = True
                return
            if route is None or match is None:
                status, payload, headers = _json(
                    404, _error_body(404, 20404, "The requested resource was not found")
                )
            else:
                status, payload, headers = self._dispatch(route, match, recorded)
            if scripted is not None:
                time.sleep(scripted.delay)
                if scripted.drop_connection:
                    handler.close_connection = True
                    return
            self._send(handler, status, payload, headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its read timeout fired)

    def _route(self, method: str, path: str) -> tuple[str | None, re.Match[str] | None]:
        for route_method, name, pattern in _ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return name, match
        return None, None

    def _pop_script(self, route: str | None) -> Scripted | None:
        for index, (scripted_route, response) in enumerate(self._script):
            if scripted_route is None or scripted_route == route:
                del self._script[index]
                return response
        return None

    def _authorized(self, account_sid: str, request: RecordedRequest) -> bool:
        return request.auth is not None and request.auth == (account_sid, self.accounts.get(account_sid))

    def _dispatch(
        self, route: str, match: re.Match[str], request: RecordedRequest
    ) -> tuple[int, bytes, dict[str, str]]:
        if route == ROUTE_CDN:
            with self._lock:
                media = self._media.get(match["key"])
            if media is None:
                return _json(404, _error_body(404, 20404, "Not found"))
            return 200, media.content, {"Content-Type": media.content_type}
        account_sid = match["account"]
        if not self._authorized(account_sid, request):
            return _json(401, _error_body(401, 20003, "Authenticate"))
        if route == ROUTE_CREATE_MESSAGE:
            return self._create(account_sid, request.form)
        if route == ROUTE_FETCH_MESSAGE:
            with self._lock:
                message = self._messages.get(match["sid"])
            if message is None or message["account_sid"] != account_sid:
                return _json(
                    404, _error_body(404, 20404, f"The requested resource {request.path} was not found")
                )
            return _json(200, message)
        if route == ROUTE_LIST_MESSAGES:
            return _json(200, self._list(account_sid, request))
        if route == ROUTE_RECORDING:
            with self._lock:
                recording = self._recordings.get(match["recording"])
            if recording is None:
                return _json(404, _error_body(404, 20404, "The requested recording was not found"))
            return 200, recording.content, {"Content-Type": recording.content_type}
        # ROUTE_MEDIA: Twilio redirects to short-lived CDN storage.
        with self._lock:
            known = match["media"] in self._media
        if not known:
            return _json(404, _error_body(404, 20404, "The requested media was not found"))
        return 307, b"", {"Location": f"{self.base_url}/cdn/{match['media']}"}

    def _create(self, account_sid: str, form: dict[str, list[str]]) -> tuple[int, bytes, dict[str, str]]:
        def one(name: str) -> str:
            return (form.get(name) or [""])[-1]

        to, body, from_, service = one("To"), one("Body"), one("From"), one("MessagingServiceSid")
        media = form.get("MediaUrl", [])
        if not to:
            return _json(400, _error_body(400, 21604, "A 'To' phone number is required."))
        if not body and not media:
            return _json(400, _error_body(400, 21602, "Message body is required."))
        if not from_ and not service:
            return _json(400, _error_body(400, 21603, "A 'From' phone number is required."))
        if len(body) > 1600:
            return _json(
                400,
                _error_body(400, 21617, "The concatenated message body exceeds the 1600 character limit."),
            )
        message = self._message_json(
            account_sid=account_sid,
            to=to,
            from_=from_ or None,
            body=body,
            # A Messaging Service send is "accepted" until a sender is chosen, then "queued".
            status="queued" if from_ else "accepted",
            created=datetime.now(UTC),
            messaging_service_sid=service or None,
            num_media=len(media),
        )
        with self._lock:
            self._messages[message["sid"]] = message
        return _json(201, message)

    def _list(self, account_sid: str, request: RecordedRequest) -> dict[str, Any]:
        def one(name: str) -> str | None:
            values = request.query.get(name)
            return values[-1] if values else None

        to, from_, after = one("To"), one("From"), one("DateSent>")
        after_dt = _parse_filter_date(after) if after else None
        page_size = int(one("PageSize") or 50)
        with self._lock:
            candidates = [dict(m) for m in self._messages.values() if m["account_sid"] == account_sid]
        selected = [
            message
            for message in candidates
            if (to is None or message["to"] == to)
            and (from_ is None or message["from"] == from_)
            # "DateSent>=" on the wire: the parameter is named `DateSent>` and is inclusive.
            and (after_dt is None or message["_sent_at"] >= after_dt)
        ]
        selected.sort(key=lambda message: message["_seq"], reverse=True)
        page = selected[:page_size]
        uri = request.path
        return {
            "messages": [_public(message) for message in page],
            "end": max(len(page) - 1, 0),
            "first_page_uri": uri,
            "next_page_uri": None,
            "page": 0,
            "page_size": page_size,
            "previous_page_uri": None,
            "start": 0,
            "uri": uri,
        }

    def _message_json(
        self,
        *,
        account_sid: str,
        to: str,
        from_: str | None,
        body: str,
        status: str,
        created: datetime,
        messaging_service_sid: str | None,
        num_media: int,
    ) -> dict[str, Any]:
        sid = new_sid("MM" if num_media else "SM")
        segments = max(1, -(-len(body) // 153)) if len(body) > 160 else 1
        return {
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": twilio_date(created),
            "date_sent": twilio_date(created),
            "date_updated": twilio_date(created),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": messaging_service_sid,
            "num_media": str(num_media),
            "num_segments": str(segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": status,
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"},
            "to": to,
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
            "_sent_at": created.astimezone(UTC),
            "_seq": next(self._seq),
        }

    # --- writing -----------------------------------------------------------------------------------

    def _send_scripted(self, handler: _Handler, scripted: Scripted) -> None:
        assert scripted.status is not None
        headers = dict(scripted.headers)
        if scripted.body is not None:
            payload = scripted.body
        else:
            payload = json.dumps(scripted.json_body if scripted.json_body is not None else {}).encode()
            headers.setdefault("Content-Type", "application/json")
        self._send(handler, scripted.status, payload, headers, with_length=not scripted.omit_content_length)

    @staticmethod
    def _send(
        handler: _Handler,
        status: int,
        payload: bytes,
        headers: Mapping[str, str],
        *,
        with_length: bool = True,
    ) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        if with_length:
            handler.send_header("Content-Length", str(len(payload)))
        else:
            handler.close_connection = True
        handler.end_headers()
        handler.wfile.write(payload)


def _public(message: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if not key.startswith("_")}


def _json(status: int, body: Mapping[str, Any]) -> tuple[int, bytes, dict[str, str]]:
    return status, json.dumps(_public(body)).encode(), {"Content-Type": "application/json"}


def _error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except ValueError:
        return None
    return user, password


def _parse_filter_date(value: str) -> datetime:
    value = value.strip()
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
