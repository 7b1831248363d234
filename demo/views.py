"""The demo's simulator pages: staff text or call their own office as a constituent, through real webhooks.

Only with ``DEMO_MODE`` (404 otherwise, for everyone). Each page POSTs signed webhooks to this same server
over HTTP (demo.sms, demo.calls), so it needs a server that can answer a second request while this one
waits: the demo runs gunicorn with threads, and ``runserver`` is threaded too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages as flash
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from demo.calls import ANONYMOUS, CallScript, http_transport, run_call
from demo.sms import (
    PLACEHOLDER_ACCOUNT_SID,
    SUCCESS_STATUSES,
    SimulatorError,
    fictional_number,
    parse_e164,
    simulate_inbound_sms,
)
from messages.segments import MAX_BODY_LENGTH
from offices.models import OfficePhoneNumber
from offices.selectors import office_phone_numbers
from offices.tenancy import WRITE_ROLES, OfficeRequest, office_view
from voice.selectors.calls import calls_by_sid

SIMULATED_CALLS_KEPT = 5


def demo_mode_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """404 for everyone, before login or membership checks, unless ``settings.DEMO_MODE`` is on."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.DEMO_MODE:
            raise Http404("The simulators are only available in demo mode.")
        return view(request, *args, **kwargs)

    return wrapper


class SimulatorForm(forms.Form):
    from_number = forms.CharField(
        label="From: the constituent's phone",
        max_length=20,
        help_text="E.164, e.g. +14155550123. Numbers 555-0100 to 555-0199 are fictional.",
    )
    to_number = forms.ChoiceField(label="To: the office's number")
    body = forms.CharField(
        label="Message",
        max_length=MAX_BODY_LENGTH,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 5}),
    )

    def __init__(self, *args: Any, numbers: Sequence[OfficePhoneNumber], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only this office's numbers: the number decides which office receives the text.
        choices = [(n.e164, f"{n.e164} ({n.label or n.get_number_type_display()})") for n in numbers]
        self.fields["to_number"].choices = choices  # type: ignore[attr-defined]  # a ChoiceField

    def clean_from_number(self) -> str:
        try:
            return parse_e164(self.cleaned_data["from_number"])
        except SimulatorError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_body(self) -> str:
        body: str = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError("Write a message before sending.")
        return body


@require_http_methods(["GET", "POST"])
@demo_mode_required
@office_view(roles=WRITE_ROLES)
def sms_simulator(request: OfficeRequest) -> HttpResponse:
    office = request.office
    numbers = [n for n in office_phone_numbers(office=office) if n.sms_enabled]
    if request.method == "POST":
        form = SimulatorForm(request.POST, numbers=numbers)
        if form.is_valid():
            base_url = settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")
            try:
                result = simulate_inbound_sms(
                    base_url=base_url,
                    to=form.cleaned_data["to_number"],
                    from_=form.cleaned_data["from_number"],
                    body=form.cleaned_data["body"],
                    auth_token=settings.TWILIO_AUTH_TOKEN,
                    account_sid=settings.TWILIO_ACCOUNT_SID,
                )
            except SimulatorError as exc:
                flash.error(request, f"The text was not sent: {exc}")
            else:
                if result.ok:
                    flash.success(
                        request,
                        f"Text from {form.cleaned_data['from_number']} received by the webhook "
                        f"({result.message_sid}). It is in the inbox below.",
                    )
                    return redirect("messages:inbox", office_slug=office.slug)
                flash.error(
                    request, f"The webhook answered HTTP {result.status_code}: {_explain(result.status_code)}"
                )
    else:
        form = SimulatorForm(
            numbers=numbers,
            initial={"from_number": fictional_number(), "to_number": numbers[0].e164 if numbers else ""},
        )
    return render(request, "demo/sms_simulator.html", {"form": form, "has_numbers": bool(numbers)})


def _explain(status_code: int) -> str:
    if status_code == HTTPStatus.FORBIDDEN:
        return (
            "the signature was rejected. The server validates against PUBLIC_BASE_URL and TWILIO_AUTH_TOKEN; "
            "set PUBLIC_BASE_URL to the address this page is served from."
        )
    return "see the server log."


class SimulatedCallForm(forms.Form):
    from_number = forms.CharField(
        label="From: the caller's phone",
        max_length=20,
        required=False,
        help_text="E.164, e.g. +14155550123 (555-0100 to 555-0199 are fictional). Blank withholds it.",
    )
    to_number = forms.ChoiceField(label="To: the office's number")
    inputs = forms.CharField(
        label="Menu choices",
        max_length=60,
        required=False,
        help_text="The keys pressed at each menu, in order, separated by spaces, e.g. “1” or “9 2”. "
        "Blank: the caller waits through the menus.",
    )
    staff_answers = forms.BooleanField(label="A staff phone answers “talk to staff”", required=False)
    voicemail_seconds = forms.IntegerField(
        label="Voicemail length (seconds)", min_value=0, max_value=600, initial=20,
        help_text="0: the caller hangs up at the beep. Twilio transcribes 2 to 120 seconds.",
    )  # fmt: skip
    voicemail_text = forms.CharField(
        label="What the caller says",
        max_length=1000,
        initial="Hello, I am calling about the clean water bill. Please call me back.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, numbers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(number, number) for number in numbers]
        self.fields["to_number"].choices = choices  # type: ignore[attr-defined]  # a ChoiceField

    def clean_from_number(self) -> str:
        value: str = self.cleaned_data["from_number"].strip()
        if not value:
            return ANONYMOUS
        try:
            return parse_e164(value)
        except SimulatorError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_inputs(self) -> tuple[str, ...]:
        keys = tuple(self.cleaned_data["inputs"].split())
        if any(len(key) != 1 or key not in "0123456789*" for key in keys):
            raise forms.ValidationError("Use single keys (0-9 or *) separated by spaces.")
        return keys


@require_http_methods(["GET", "POST"])
@demo_mode_required
@office_view(roles=WRITE_ROLES)
def call_simulator(request: OfficeRequest) -> HttpResponse:
    office = request.office
    numbers = [n.e164 for n in office_phone_numbers(office=office) if n.voice_enabled]
    if request.method == "POST":
        form = SimulatedCallForm(request.POST, numbers=numbers)
        if form.is_valid():
            script = CallScript(
                to_number=form.cleaned_data["to_number"],
                from_number=form.cleaned_data["from_number"],
                inputs=form.cleaned_data["inputs"],
                staff_answers=form.cleaned_data["staff_answers"],
                voicemail_seconds=form.cleaned_data["voicemail_seconds"],
                voicemail_text=form.cleaned_data["voicemail_text"],
                account_sid=settings.TWILIO_ACCOUNT_SID or PLACEHOLDER_ACCOUNT_SID,
            )
            base_url = settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")
            try:
                # Synchronous, like the SMS simulator: a few signed requests to this same server.
                trace = run_call(script, http_transport(base_url, settings.TWILIO_AUTH_TOKEN))
            except SimulatorError as exc:
                flash.error(request, f"The call was not placed: {exc}")
            else:
                kept = [trace.call_sid, *request.session.get("voice_simulator_calls", [])]
                request.session["voice_simulator_calls"] = kept[:SIMULATED_CALLS_KEPT]
                if trace.ok:
                    flash.success(
                        request,
                        f"Simulated call {trace.call_sid} finished ({len(trace.exchanges)} webhooks).",
                    )
                else:
                    failed = next(e for e in trace.exchanges if e.status not in SUCCESS_STATUSES)
                    flash.error(
                        request,
                        f"The webhook {failed.path} answered HTTP {failed.status}; see the server log.",
                    )
            return redirect("demo:call-simulator", office_slug=office.slug)
    else:
        form = SimulatedCallForm(numbers=numbers, initial={"from_number": fictional_number()})
    recent = calls_by_sid(office=office, sids=request.session.get("voice_simulator_calls", []))
    return render(
        request,
        "demo/call_simulator.html",
        {"form": form, "has_numbers": bool(numbers), "recent": recent},
    )
