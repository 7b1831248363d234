"""The project's URLs plus the baseline for benchmarks: a bare view that returns empty TwiML."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from messages.twilio.twiml import TWIML_CONTENT_TYPE, empty_messaging_response

_EMPTY_TWIML = empty_messaging_response()


@csrf_exempt
def bare_twiml(request: HttpRequest) -> HttpResponse:
    """The floor for a webhook on this stack: same server, middleware and response, no work at all."""
    return HttpResponse(_EMPTY_TWIML, content_type=TWIML_CONTENT_TYPE)


urlpatterns = [
    path("bench/bare-twiml/", bare_twiml, name="bench-bare-twiml"),
    path("", include("civicdesk.urls")),
]
