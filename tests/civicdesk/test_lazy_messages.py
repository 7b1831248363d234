"""LazyMessageMiddleware: django.contrib.messages behaves as before, and costs nothing when unused."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.messages.storage.base import BaseStorage
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.utils.functional import empty

from civicdesk.middleware import LazyMessageMiddleware

View = Callable[[HttpRequest], HttpResponse]


def _through_middleware(view: View, request: HttpRequest) -> HttpResponse:
    def handler(req: HttpRequest) -> HttpResponse:
        response = LazyMessageMiddleware(view)(req)
        assert isinstance(response, HttpResponse)
        return response

    response = SessionMiddleware(handler)(request)
    assert isinstance(response, HttpResponse)
    return response


def test_message_added_in_one_request_is_shown_in_the_next() -> None:
    factory = RequestFactory()

    def add(request: HttpRequest) -> HttpResponse:
        messages.success(request, "Saved the reply.")
        return HttpResponse("ok")

    first = _through_middleware(add, factory.get("/"))
    assert "messages" in first.cookies  # the cookie storage kept it for the next request

    seen: list[str] = []

    def show(request: HttpRequest) -> HttpResponse:
        seen.extend(str(m) for m in messages.get_messages(request))
        return HttpResponse("ok")

    follow = factory.get("/")
    follow.COOKIES["messages"] = first.cookies["messages"].value
    second = _through_middleware(show, follow)
    assert seen == ["Saved the reply."]
    # Shown once: the storage expires the cookie after the messages were read.
    assert second.cookies["messages"].value == ""


def test_a_request_that_never_uses_messages_never_builds_the_storage() -> None:
    captured: list[HttpRequest] = []

    def webhook(request: HttpRequest) -> HttpResponse:
        captured.append(request)
        return HttpResponse("<Response/>", content_type="text/xml")

    response = _through_middleware(webhook, RequestFactory().post("/webhooks/twilio/sms/"))
    assert "messages" not in response.cookies
    assert captured[0]._messages._wrapped is empty  # type: ignore[attr-defined]  # private attributes


def test_the_lazy_storage_is_the_real_one_once_used() -> None:
    def view(request: HttpRequest) -> HttpResponse:
        storage = request._messages  # type: ignore[attr-defined]  # the messages framework's own attribute
        assert isinstance(storage, BaseStorage)  # the lazy object passes isinstance checks
        assert len(storage) == 0
        return HttpResponse("ok")

    assert _through_middleware(view, RequestFactory().get("/")).status_code == 200
