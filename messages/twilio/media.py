"""SSRF-safe download of MMS media from Twilio.

The URL comes from a webhook, and the download runs on our servers with the account's credentials, so
every step is checked, not just the first:

1. The starting URL must be exactly a Twilio media URL:
   ``https://api.twilio.com/2010-04-01/Accounts/AC…/Messages/MM…|SM…/Media/ME…`` (a strict pattern in the
   spirit of Chatwoot's ``TWILIO_MEDIA_URL_REGEX``). Look-alike hosts (``api.twilio.com.evil.com``),
   userinfo (``api.twilio.com@evil.com``), IP literals and ports other than 443 are rejected.
2. Twilio answers with a redirect to its CDN
   (https://www.twilio.com/docs/messaging/api/media-resource#fetch-a-media-resource). Redirects are
   followed by hand, at most :data:`MAX_REDIRECTS`, and each hop must be https to an allow-listed host
   (:data:`ALLOWED_MEDIA_HOSTS`, :data:`ALLOWED_MEDIA_HOST_SUFFIXES`). Credentials (HTTP Basic, account SID
   and Auth Token) are sent only to ``api.twilio.com``, never to the CDN.
3. Every hop's host is resolved once and *all* its addresses must be public (no private, loopback,
   link-local, reserved, multicast or unspecified address, IPv4-mapped forms included). The connection is
   then made to the address that was checked, with TLS SNI and certificate verification against the host
   name, so DNS cannot be re-pointed between the check and the connect (DNS rebinding).
4. The response must be 200 with an allowed ``Content-Type``; the body is streamed and abandoned as soon
   as it exceeds ``max_bytes``; the whole download has a deadline.

Outcomes: :class:`MediaRejected` (never retry), :class:`MediaNotReady` (404: media can lag the webhook,
retry briefly), :class:`MediaTemporaryError` (5xx/429/network: retry with backoff).

Testing against a local fake: when ``settings.TWILIO_API_BASE_URL`` is set (see :mod:`client`), the
*validated* public ``https://api.twilio.com/...`` URL is sent to that base URL instead, and a redirect to
that exact origin (scheme, host and port) is accepted as the fake's CDN. Loopback addresses are allowed
only for that origin. Validation of the starting URL is unchanged. Only the test settings define it;
production and local settings refuse to start when the environment sets it.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import socket
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import NewConnectionError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from messages.twilio import client
from messages.twilio.errors import MediaError, MediaNotReady, MediaRejected, MediaTemporaryError

__all__ = [
    "ALLOWED_MEDIA_HOSTS",
    "ALLOWED_MEDIA_HOST_SUFFIXES",
    "MAX_REDIRECTS",
    "FetchedMedia",
    "MediaError",
    "MediaNotReady",
    "MediaRejected",
    "MediaTemporaryError",
    "Resolver",
    "fetch_media",
    "is_allowed_media_host",
    "is_public_address",
    "is_twilio_media_url",
]

TWILIO_API_HOST = "api.twilio.com"
TWILIO_MEDIA_URL_RE = re.compile(
    r"https://api\.twilio\.com/2010-04-01/Accounts/AC[0-9a-f]{32}/Messages/(?:MM|SM)[0-9a-f]{32}"
    r"/Media/ME[0-9a-f]{32}"
)
ALLOWED_MEDIA_HOSTS: frozenset[str] = frozenset(
    {TWILIO_API_HOST, "s3.amazonaws.com", "s3-external-1.amazonaws.com"}
)
ALLOWED_MEDIA_HOST_SUFFIXES: tuple[str, ...] = (".twiliocdn.com", ".s3.amazonaws.com")
MAX_REDIRECTS = 3
DEFAULT_DEADLINE_SECONDS = 30.0
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_SIZE = 64 * 1024
_HOSTNAME_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")

#: ``resolver(host, port)`` -> the IP addresses the host resolves to. Injectable for tests.
Resolver = Callable[[str, int], Sequence[str]]


@dataclass(frozen=True, slots=True)
class FetchedMedia:
    content: bytes
    content_type: str  # lower-case, without parameters, e.g. "image/jpeg"


@dataclass(frozen=True, slots=True)
class _Hop:
    url: str  # the URL as validated (public form)
    public_host: str
    scheme: str  # transport scheme
    connect_host: str  # host to resolve and (for https) verify the certificate against
    port: int
    request_target: str  # path and query
    allow_loopback: bool


def is_twilio_media_url(url: str) -> bool:
    """True if ``url`` is exactly a Twilio message media URL (no query, fragment, port or userinfo)."""
    return bool(TWILIO_MEDIA_URL_RE.fullmatch(url))


def is_allowed_media_host(host: str) -> bool:
    """True if ``host`` (lower-case) is one of the hosts Twilio serves media or media redirects from."""
    if host in ALLOWED_MEDIA_HOSTS:
        return True
    return any(host.endswith(suffix) and len(host) > len(suffix) for suffix in ALLOWED_MEDIA_HOST_SUFFIXES)


def is_public_address(address: str) -> bool:
    """True if ``address`` is a globally routable unicast IP (checks IPv4 embedded in IPv6 forms too)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None)
        candidates.extend(address for address in embedded if address is not None)
    return all(
        candidate.is_global
        and not (
            candidate.is_private
            or candidate.is_loopback
            or candidate.is_link_local
            or candidate.is_reserved
            or candidate.is_multicast
            or candidate.is_unspecified
        )
        for candidate in candidates
    )


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _fake_origin() -> tuple[str, str, int] | None:
    base = client.api_base_url()
    if not base:
        return None
    parts = urlsplit(base)
    if not parts.hostname or parts.scheme not in ("http", "https"):
        return None
    return (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))


def _validate_hop(url: str, fake_origin: tuple[str, str, int] | None) -> _Hop:
    """Check one URL of the redirect chain and work out where to connect. Raises MediaRejected."""
    if any(ch.isspace() or ch < " " or ch == "\\" for ch in url):  # below " ": the control characters
        raise MediaRejected("media URL contains whitespace, control characters or backslashes")
    parts = urlsplit(url)
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise MediaRejected("media URL must not carry userinfo")
    try:
        port = parts.port
    except ValueError:
        raise MediaRejected("media URL has an invalid port") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise MediaRejected("media URL has no host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    if fake_origin is not None:
        fake_scheme, fake_host, fake_port = fake_origin
        default_port = 443 if parts.scheme == "https" else 80
        if (parts.scheme, host, port or default_port) == fake_origin:
            # The local fake's own CDN path (tests only: TWILIO_API_BASE_URL is set).
            return _Hop(url, host, fake_scheme, fake_host, fake_port, target, allow_loopback=True)

    if parts.scheme != "https":
        raise MediaRejected(f"media hop to {host} is not https")
    if port not in (None, 443):
        raise MediaRejected(f"media hop to {host} uses port {port}")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        raise MediaRejected("media hop to an IP literal")
    if not _HOSTNAME_RE.fullmatch(host) or not is_allowed_media_host(host):
        raise MediaRejected(f"media host {host!r} is not allow-listed")

    if fake_origin is not None and host == TWILIO_API_HOST:
        fake_scheme, fake_host, fake_port = fake_origin
        return _Hop(url, host, fake_scheme, fake_host, fake_port, target, allow_loopback=True)
    return _Hop(url, host, "https", host, 443, target, allow_loopback=False)


def _checked_addresses(hop: _Hop, resolver: Resolver) -> list[str]:
    try:
        addresses = list(resolver(hop.connect_host, hop.port))
    except OSError as exc:
        raise MediaTemporaryError(f"could not resolve {hop.connect_host}: {exc}") from exc
    if not addresses:
        raise MediaTemporaryError(f"{hop.connect_host} did not resolve")
    for address in addresses:
        if is_public_address(address):
            continue
        if hop.allow_loopback and _is_loopback(address):
            continue
        raise MediaRejected(f"{hop.public_host} resolves to a non-public address ({address})")
    return addresses


def _open(
    hop: _Hop, address: str, headers: dict[str, str], timeout: urllib3.Timeout
) -> urllib3.BaseHTTPResponse:
    pool: urllib3.HTTPConnectionPool
    if hop.scheme == "https":
        # Connect to the checked address; SNI and certificate checks still use the host name.
        pool = urllib3.HTTPSConnectionPool(
            address,
            hop.port,
            timeout=timeout,
            maxsize=1,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=hop.connect_host,
            assert_hostname=hop.connect_host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, hop.port, timeout=timeout, maxsize=1, retries=False)
    return pool.urlopen(
        "GET",
        hop.request_target,
        headers=headers,
        redirect=False,
        retries=False,
        preload_content=False,
        assert_same_host=False,
    )


def _request(
    hop: _Hop, addresses: Sequence[str], headers: dict[str, str], timeout: urllib3.Timeout
) -> urllib3.BaseHTTPResponse:
    last_error: Exception | None = None
    for address in addresses:
        try:
            return _open(hop, address, headers, timeout)
        except NewConnectionError as exc:  # refused/unreachable: try the next checked address
            last_error = exc
        except SSLError as exc:
            raise MediaRejected(f"TLS verification failed for {hop.public_host}: {exc}") from exc
        except (Urllib3HTTPError, OSError) as exc:
            raise MediaTemporaryError(f"network error fetching media from {hop.public_host}: {exc}") from exc
    raise MediaTemporaryError(f"could not connect to {hop.public_host}: {last_error}")


def _read_body(
    response: urllib3.BaseHTTPResponse, *, max_bytes: int, allowed: Collection[str], deadline: float
) -> FetchedMedia:
    content_type = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if content_type not in allowed:
        raise MediaRejected(f"media type {content_type or '(none)'!r} is not allowed")
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise MediaRejected(f"media is {int(declared)} bytes; the limit is {max_bytes}")
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.stream(_CHUNK_SIZE):
            total += len(chunk)
            if total > max_bytes:
                raise MediaRejected(f"media exceeds the limit of {max_bytes} bytes")
            if time.monotonic() > deadline:
                raise MediaTemporaryError("media download exceeded its deadline")
            chunks.append(chunk)
    except (Urllib3HTTPError, OSError) as exc:
        raise MediaTemporaryError(f"media download interrupted: {exc}") from exc
    return FetchedMedia(content=b"".join(chunks), content_type=content_type)


def fetch_media(
    url: str,
    *,
    account_sid: str,
    auth_token: str,
    max_bytes: int,
    allowed_content_types: Collection[str],
    resolver: Resolver | None = None,
    timeout: tuple[float, float] | None = None,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
) -> FetchedMedia:
    """Download one Twilio media item under the rules in the module docstring.

    ``allowed_content_types`` are MIME types without parameters (compared case-insensitively);
    ``timeout`` is ``(connect, read)`` seconds per hop (default: ``TWILIO_HTTP_TIMEOUT``).
    Raises :class:`MediaRejected`, :class:`MediaNotReady` or :class:`MediaTemporaryError`.
    """
    if not (is_twilio_media_url(url) or is_twilio_recording_url(url)):
        raise MediaRejected("not a Twilio media URL")
    allowed = frozenset(content_type.strip().lower() for content_type in allowed_content_types)
    resolve = resolver or _system_resolver
    connect_timeout, read_timeout = timeout or client.http_timeout()
    http_timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
    deadline = time.monotonic() + deadline_seconds
    fake_origin = _fake_origin()
    credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")

    current = url
    for _hop_number in range(MAX_REDIRECTS + 1):
        if time.monotonic() > deadline:
            raise MediaTemporaryError("media download exceeded its deadline")
        hop = _validate_hop(current, fake_origin)
        addresses = _checked_addresses(hop, resolve)
        host_header = hop.connect_host if hop.port in (80, 443) else f"{hop.connect_host}:{hop.port}"
        headers = {
            "Host": host_header,
            "Accept": "*/*",
            # Counting decoded bytes against max_bytes is the real guard; asking for identity simply
            # avoids decompressing at all.
            "Accept-Encoding": "identity",
            "User-Agent": "civicdesk-media-fetch/1",
        }
        if hop.public_host == TWILIO_API_HOST:
            headers["Authorization"] = f"Basic {credentials}"
        response = _request(hop, addresses, headers, http_timeout)
        try:
            status = response.status
            if status in _REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise MediaRejected(f"HTTP {status} redirect without a Location")
                current = urljoin(hop.url, location)
                continue
            if status == HTTPStatus.OK:
                return _read_body(response, max_bytes=max_bytes, allowed=allowed, deadline=deadline)
            if status == HTTPStatus.NOT_FOUND:
                raise MediaNotReady(f"{hop.public_host} answered 404 (media may not be ready yet)")
            if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                raise MediaTemporaryError(f"{hop.public_host} answered HTTP {status}")
            raise MediaRejected(f"{hop.public_host} answered HTTP {status}")
        except Urllib3TimeoutError as exc:
            raise MediaTemporaryError(f"timed out reading media from {hop.public_host}") from exc
        finally:
            # Close rather than release: the pool is per hop, and a half-read body must not be reused.
            response.close()
    raise MediaRejected(f"more than {MAX_REDIRECTS} redirects")


# --- voice recordings -------------------------------------------------------------------------------------
# Appended for the voice hotline: fetch_media also accepts a call recording's URL, with or without the
# format extension (https://www.twilio.com/docs/voice/api/recording#fetch-a-recording-media-file: ".mp3"
# returns MP3, no extension returns WAV). The other rules (host, addresses, redirects, size) are the same.

__all__ += ["TWILIO_RECORDING_URL_RE", "is_twilio_recording_url"]

TWILIO_RECORDING_URL_RE = re.compile(
    r"https://api\.twilio\.com/2010-04-01/Accounts/AC[0-9a-f]{32}/Recordings/RE[0-9a-f]{32}(?:\.mp3|\.wav)?"
)


def is_twilio_recording_url(url: str) -> bool:
    """True if ``url`` is exactly a Twilio call-recording URL (no query, fragment, port or userinfo)."""
    return bool(TWILIO_RECORDING_URL_RE.fullmatch(url))
