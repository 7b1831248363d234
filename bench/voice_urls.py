"""The project's URLs plus the voice benchmark's baseline: a bare view returning empty voice TwiML."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from messages.twilio.twiml import TWIML_CONTENT_TYPE, empty_voice_response

_EMPTY_TWIML = empty_voice_response()


@csrf_exempt
def bare_voice_twiml(request: HttpRequest) -> HttpResponse:
    """The floor for a voice webhook on this stack: same server, middleware and response type, no work."""
    return HttpResponse(_EMPTY_TWIML, content_type=TWIML_CONTENT_TYPE)


urlpatterns = [
    path("bench/bare-voice-twiml/", bare_voice_twiml, name="bench-bare-voice-twiml"),
    path("", include("civicdesk.urls")),
]
