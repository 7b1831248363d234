"""Project-wide HTTP hardening."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.messages.storage import default_storage
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

from civicdesk.postgres.base import deadline

logger = logging.getLogger(__name__)

WEBHOOK_PATH_PREFIX = "/webhooks/"

# No inline script or style anywhere: every asset is vendored and served by whitenoise.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class LazyMessageMiddleware(MessageMiddleware):
    """Django's ``MessageMiddleware``, building the message storage only when something uses it.

    The stock middleware builds a cookie-and-session storage for every request, cookie signer included,
    which was 3% of an inbound-text webhook's CPU (py-spy, docs/performance.md), for requests that never
    show or add a message. Here ``request._messages`` is a lazy object: ``messages.add_message``,
    ``get_messages`` and the template context processor build the storage on first use, and a response
    whose storage was never built has nothing to save.
    """

    def process_request(self, request: HttpRequest) -> None:
        storage = SimpleLazyObject(lambda: default_storage(request))
        request._messages = storage  # type: ignore[attr-defined]  # the messages framework's own attribute

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        stored = getattr(request, "_messages", None)
        if isinstance(stored, SimpleLazyObject) and stored._wrapped is empty:  # type: ignore[attr-defined]  # private
            return response
        return super().process_response(request, response)


class WebhookDeadlineMiddleware:
    """Twilio webhooks never wait on PostgreSQL past ``WEBHOOK_DATABASE_DEADLINE_SECONDS``, and a database
    that does not answer (or refuses) is a 503 with ``Retry-After``, never a 500 or a hung request.

    Twilio waits 15 s for an answer, and a request held that long holds its web thread too: a hung database
    would take every thread in a few seconds. A 503 is what Twilio's retry (connection overrides) and its
    fallback URL act on; a text whose transaction did commit before the error is stored once however often
    it is retried, since intake is idempotent on the MessageSid.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(WEBHOOK_PATH_PREFIX):
            return self.get_response(request)
        with deadline(settings.WEBHOOK_DATABASE_DEADLINE_SECONDS):
            return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(WEBHOOK_PATH_PREFIX):
            return None
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("webhook %s: the database is unavailable (%s); answered 503", request.path, exception)
        return HttpResponse(
            "Service unavailable: the database did not answer. Retry later.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
            headers={"Retry-After": str(settings.WEBHOOK_RETRY_AFTER_SECONDS)},
        )
