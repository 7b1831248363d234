"""SSRF-safe media download: real HTTP against the local fake, DNS answers injected."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import trustme
import urllib3

from messages.twilio import media
from messages.twilio.media import (
    MediaNotReady,
    MediaRejected,
    MediaTemporaryError,
    fetch_media,
    is_allowed_media_host,
    is_public_address,
    is_twilio_media_url,
)
from tests.fakes.fake_twilio import ROUTE_CDN, ROUTE_MEDIA, FakeTwilio, Scripted, new_sid

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 500
ALLOWED = {"image/jpeg", "image/png"}
ACCOUNT = "AC" + "a" * 32
VALID_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/MM{'1' * 32}/Media/ME{'2' * 32}"


@pytest.fixture
def fake(settings) -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        settings.TWILIO_API_BASE_URL = fake.base_url
        settings.TWILIO_HTTP_TIMEOUT = (2.0, 2.0)
        yield fake


def fetch(fake: FakeTwilio, url: str, **overrides):
    kwargs: dict[str, Any] = {
        "account_sid": fake.account_sid,
        "auth_token": fake.auth_token,
        "max_bytes": 10_000,
        "allowed_content_types": ALLOWED,
    }
    kwargs.update(overrides)
    return fetch_media(url, **kwargs)


def resolver_for(answers: dict[str, Sequence[str]]):
    calls: list[str] = []

    def resolve(host: str, port: int) -> Sequence[str]:
        calls.append(host)
        return answers.get(host, ["127.0.0.1"] if host == "127.0.0.1" else ["93.184.215.14"])

    resolve.calls = calls  # type: ignore[attr-defined]  # the test reads the calls back
    return resolve


# --- the happy path --------------------------------------------------------------------------------


def test_downloads_media_through_the_cdn_redirect_sending_credentials_only_to_the_api(fake):
    url = fake.add_media(JPEG, "image/jpeg")
    media = fetch(fake, url)
    assert (media.content, media.content_type) == (JPEG, "image/jpeg")

    (api_request,) = fake.requests_for(ROUTE_MEDIA)
    (cdn_request,) = fake.requests_for(ROUTE_CDN)
    assert api_request.auth == (fake.account_sid, fake.auth_token)
    assert cdn_request.auth is None
    assert "Authorization" not in cdn_request.headers


def test_content_type_parameters_and_case_are_ignored(fake):
    url = fake.add_media(JPEG, "Image/JPEG; name=photo.jpg")
    assert fetch(fake, url).content_type == "image/jpeg"


def test_three_redirects_are_followed(fake):
    url = fake.add_media(JPEG, "image/jpeg")
    cdn = f"{fake.base_url}/cdn/{url.rsplit('/', 1)[1]}"
    fake.script(Scripted.redirect(cdn), route=ROUTE_MEDIA)
    fake.script(Scripted.redirect(cdn, status=302), Scripted.redirect(cdn, status=301), route=ROUTE_CDN)
    assert fetch(fake, url).content == JPEG


def test_a_fourth_redirect_is_rejected(fake):
    url = fake.add_media(JPEG, "image/jpeg")
    cdn = f"{fake.base_url}/cdn/{url.rsplit('/', 1)[1]}"
    fake.script(Scripted.redirect(cdn), route=ROUTE_MEDIA)
    fake.script(*[Scripted.redirect(cdn)] * 3, route=ROUTE_CDN)
    with pytest.raises(MediaRejected, match="redirects"):
        fetch(fake, url)
    assert len(fake.requests) == 4


# --- the starting URL ------------------------------------------------------------------------------

MM = "MM" + "1" * 32
ME = "ME" + "2" * 32
PATH = f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{MM}/Media/{ME}"


@pytest.mark.parametrize(
    "url",
    [
        f"https://api.twilio.com.evil.com{PATH}",
        f"https://evil.com/api.twilio.com{PATH}",
        f"https://api.twilio.com@evil.com{PATH}",
        f"https://user:pw@api.twilio.com{PATH}",
        f"http://api.twilio.com{PATH}",
        f"https://api.twilio.com:8443{PATH}",
        f"https://api.twilio.com:443{PATH}",
        f"https://54.172.60.1{PATH}",
        f"https://[::1]{PATH}",
        f"https://API.TWILIO.COM{PATH}",
        f"https://api.twilio.com{PATH}?redirect=https://evil.com",
        f"https://api.twilio.com{PATH}#frag",
        f"https://api.twilio.com{PATH}\n",
        f"https://api.twilio.com{PATH}/../../../Calls",
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{'3' * 32}.exe",
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls/CA{'3' * 32}",
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/CA{'1' * 32}/Media/{ME}",
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{MM}/Media/ME{'G' * 32}",
        "https://media.twiliocdn.com/some/object",
        "file:///etc/passwd",
        "",
    ],
)
def test_anything_but_an_exact_twilio_media_url_is_rejected_before_any_lookup(settings, url):
    settings.TWILIO_API_BASE_URL = ""
    resolve = resolver_for({})
    with pytest.raises(MediaRejected, match="not a Twilio media URL"):
        fetch_media(
            url,
            account_sid=ACCOUNT,
            auth_token="t",
            max_bytes=1,
            allowed_content_types=ALLOWED,
            resolver=resolve,
        )
    assert resolve.calls == []
    assert not is_twilio_media_url(url)


def test_valid_url_shape_is_recognised():
    assert is_twilio_media_url(VALID_URL)
    assert is_twilio_media_url(VALID_URL.replace("/MM", "/SM"))


@pytest.mark.parametrize("suffix", ["", ".mp3", ".wav"])
def test_call_recording_urls_are_accepted_too(suffix):
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{'3' * 32}{suffix}"
    assert media.is_twilio_recording_url(url)
    assert not is_twilio_media_url(url)


# --- where the host resolves -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "answers",
    [
        ["127.0.0.1"],
        ["10.0.0.5"],
        ["169.254.169.254"],
        ["::1"],
        ["::ffff:10.0.0.5"],
        ["52.1.2.3", "192.168.1.9"],
    ],
)
def test_api_host_resolving_to_a_non_public_address_is_rejected(settings, answers):
    settings.TWILIO_API_BASE_URL = ""  # production mode: no fake, loopback never allowed
    resolve = resolver_for({"api.twilio.com": answers})
    with pytest.raises(MediaRejected, match="non-public address"):
        fetch_media(
            VALID_URL,
            account_sid=ACCOUNT,
            auth_token="t",
            max_bytes=1000,
            allowed_content_types=ALLOWED,
            resolver=resolve,
        )
    assert resolve.calls == ["api.twilio.com"]


def test_dns_failure_is_temporary(settings):
    settings.TWILIO_API_BASE_URL = ""

    def failing(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror("temporary failure in name resolution")

    with pytest.raises(MediaTemporaryError, match="resolve"):
        fetch_media(
            VALID_URL,
            account_sid=ACCOUNT,
            auth_token="t",
            max_bytes=1,
            allowed_content_types=ALLOWED,
            resolver=failing,
        )


def test_default_resolver_uses_getaddrinfo(settings, monkeypatch):
    settings.TWILIO_API_BASE_URL = ""
    seen: list[str] = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        seen.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.9.8.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(MediaRejected, match=r"non-public address \(10\.9\.8\.7\)"):
        fetch_media(
            VALID_URL, account_sid=ACCOUNT, auth_token="t", max_bytes=1, allowed_content_types=ALLOWED
        )
    assert seen == ["api.twilio.com"]


# --- redirects -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example.com/steal",
        "https://api.twilio.com.evil.com/x",
        "https://twiliocdn.com.evil.com/x",
        "https://eviltwiliocdn.com/x",
        "http://media.twiliocdn.com/x",
        "https://media.twiliocdn.com:8443/x",
        "https://user@media.twiliocdn.com/x",
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00::1]/x",
        "ftp://media.twiliocdn.com/x",
        "//evil.example.com/x",
    ],
)
def test_redirect_outside_the_allow_list_is_rejected_without_following_it(fake, location):
    url = fake.add_media(JPEG, "image/jpeg")
    fake.script(Scripted.redirect(location), route=ROUTE_MEDIA)
    with pytest.raises(MediaRejected):
        fetch(fake, url)
    assert len(fake.requests) == 1


def test_redirect_to_another_local_port_is_rejected(fake):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        url = fake.add_media(JPEG, "image/jpeg")
        fake.script(Scripted.redirect(f"http://127.0.0.1:{port}/cdn/x"), route=ROUTE_MEDIA)
        with pytest.raises(MediaRejected, match="not https"):
            fetch(fake, url)


def test_redirect_to_an_allow_listed_host_resolving_privately_is_rejected(fake):
    url = fake.add_media(JPEG, "image/jpeg")
    fake.script(Scripted.redirect("https://media.twiliocdn.com/obj"), route=ROUTE_MEDIA)
    resolve = resolver_for({"media.twiliocdn.com": ["10.0.0.7"]})
    with pytest.raises(MediaRejected, match="non-public address"):
        fetch(fake, url, resolver=resolve)
    assert resolve.calls == ["127.0.0.1", "media.twiliocdn.com"]


def test_loopback_is_allowed_only_for_the_configured_fake_origin(fake):
    url = fake.add_media(JPEG, "image/jpeg")
    fake.script(Scripted.redirect("https://s3-external-1.amazonaws.com/obj"), route=ROUTE_MEDIA)
    resolve = resolver_for({"s3-external-1.amazonaws.com": ["127.0.0.1"]})
    with pytest.raises(MediaRejected, match="non-public address"):
        fetch(fake, url, resolver=resolve)


# --- responses -------------------------------------------------------------------------------------


def test_disallowed_content_type_is_rejected(fake):
    url = fake.add_media(b"<html>", "text/html")
    with pytest.raises(MediaRejected, match="text/html"):
        fetch(fake, url)


def test_missing_content_type_is_rejected(fake):
    url = fake.add_media(JPEG, "")
    with pytest.raises(MediaRejected, match="not allowed"):
        fetch(fake, url)


def test_declared_oversize_is_rejected(fake):
    url = fake.add_media(JPEG, "image/jpeg")
    with pytest.raises(MediaRejected, match="limit"):
        fetch(fake, url, max_bytes=len(JPEG) - 1)


def test_streamed_oversize_without_content_length_is_cut_off(fake):
    url = fake.add_media(JPEG, "image/jpeg")
    big = b"\xff" * 300_000
    fake.script(Scripted.raw(200, big, "image/jpeg", omit_content_length=True), route=ROUTE_CDN)
    with pytest.raises(MediaRejected, match="exceeds the limit"):
        fetch(fake, url, max_bytes=100_000)


def test_body_exactly_at_the_limit_is_accepted(fake):
    url = fake.add_media(JPEG, "image/jpeg")
    assert fetch(fake, url, max_bytes=len(JPEG)).content == JPEG


def test_404_means_not_ready_yet(fake):
    url = f"https://api.twilio.com/2010-04-01/Accounts/{fake.account_sid}/Messages/{new_sid('MM')}/Media/{new_sid('ME')}"
    with pytest.raises(MediaNotReady):
        fetch(fake, url)


@pytest.mark.parametrize(
    "scripted", [Scripted.server_error(500), Scripted.server_error(503), Scripted(status=429)]
)
def test_server_errors_and_throttling_are_temporary(fake, scripted):
    url = fake.add_media(JPEG, "image/jpeg")
    fake.script(scripted, route=ROUTE_MEDIA)
    with pytest.raises(MediaTemporaryError):
        fetch(fake, url)


def test_cdn_errors_are_temporary_too(fake):
    url = fake.add_media(JPEG, "image/jpeg")
    fake.script(Scripted.server_error(502), route=ROUTE_CDN)
    with pytest.raises(MediaTemporaryError):
        fetch(fake, url)


def test_wrong_credentials_are_rejected(fake):
    url = fake.add_media(JPEG, "image/jpeg")
    with pytest.raises(MediaRejected, match="401"):
        fetch(fake, url, auth_token="wrong")


def test_slow_response_times_out_as_temporary(fake):
    url = fake.add_media(JPEG, "image/jpeg")
    fake.script(Scripted.slow(1.0), route=ROUTE_CDN)
    with pytest.raises(MediaTemporaryError):
        fetch(fake, url, timeout=(1.0, 0.2))


def test_connection_refused_is_temporary(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{port}"
    with pytest.raises(MediaTemporaryError):
        fetch_media(
            VALID_URL, account_sid=ACCOUNT, auth_token="t", max_bytes=1, allowed_content_types=ALLOWED
        )


# --- helpers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("api.twilio.com", True),
        ("media.twiliocdn.com", True),
        ("s3.amazonaws.com", True),
        ("s3-external-1.amazonaws.com", True),
        ("com.twilio.prod.twilio-api.s3.amazonaws.com", True),
        ("twiliocdn.com", False),
        ("evil-twiliocdn.com", False),
        ("twiliocdn.com.evil.com", False),
        ("api.twilio.com.evil.com", False),
        ("s3.amazonaws.com.evil.com", False),
        ("evil.com", False),
    ],
)
def test_media_host_allow_list(host, allowed):
    assert is_allowed_media_host(host) is allowed


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("52.216.1.1", True),
        ("2606:4700::1111", True),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.0.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 - a test value, not a bind address
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("not-an-ip", False),
    ],
)
def test_public_address_check(address, public):
    assert is_public_address(address) is public


# --- TLS to a pinned address -----------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path) -> Iterator[tuple[int, str]]:
    """An HTTPS server on 127.0.0.1 with a certificate for media.twiliocdn.com from a test-only CA.

    trustme makes the CA and the certificate in Python, so the test needs no openssl binary and never skips.
    Yields the port and the path of the CA bundle a client must trust.
    """
    authority = trustme.CA()
    server_cert = authority.issue_cert("media.twiliocdn.com")
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("X-Seen-Host", self.headers.get("Host", ""))
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"png")

        def log_message(self, format: str, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], str(bundle)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("host", "trusted"), [("media.twiliocdn.com", True), ("other.twiliocdn.com", False)])
def test_https_hop_connects_to_the_checked_address_but_verifies_the_host_name(
    tls_server, monkeypatch, host, trusted
):
    port, cert = tls_server
    monkeypatch.setattr("messages.twilio.media.certifi.where", lambda: cert)
    hop = media._Hop(f"https://{host}/x", host, "https", host, port, "/x", allow_loopback=True)
    timeout = urllib3.Timeout(connect=2, read=2)
    if trusted:
        response = media._request(hop, ["127.0.0.1"], {"Host": host}, timeout)
        assert (response.status, response.read(), response.headers["X-Seen-Host"]) == (200, b"png", host)
    else:
        with pytest.raises(MediaRejected, match="TLS verification failed"):
            media._request(hop, ["127.0.0.1"], {"Host": host}, timeout)
