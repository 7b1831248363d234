"""Voice hotline pages, under ``/o/<office_slug>/voice/``: thin adapters over selectors and services.

- voicemail playback: the recording, streamed from our storage to members of the office only (never a
  public Twilio URL);
- call-in tallies: the count per campaign and per issue; a campaign's page polls its own tally partial (htmx)
  while the campaign is live, and a JSON twin serves scripts; staff switch a campaign on or off;
- the demo's "place a simulated call" page (DEMO_MODE only), which drives a whole call through the real,
  signed webhooks (messages.simulator_voice).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages as flash
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from civicdesk.tenancy import WRITE_ROLES, office_view
from messages.selectors.tallies import (
    call_in_campaign_get,
    call_in_recent_tallies,
    issue_call_in_summaries,
    tally_summaries,
    tally_summary,
)
from messages.selectors.voice import calls_by_sid, voicemail_audio_get
from messages.services.voice_campaigns import CallInCampaignNotFound, call_in_campaign_switch
from messages.simulator import PLACEHOLDER_ACCOUNT_SID, SimulatorError, fictional_number, parse_e164
from messages.simulator_voice import ANONYMOUS, CallScript, http_transport, run_call
from messages.views.simulator import demo_mode_required
from offices.selectors import office_phone_numbers

# Served as themselves so <audio> plays them; anything else (never expected) downloads as bytes.
AUDIO_TYPES = frozenset({"audio/mpeg", "audio/wav", "audio/x-wav"})
TALLY_REFRESH_SECONDS = 10
SIMULATED_CALLS_KEPT = 5


@require_GET
@office_view()
def voicemail_audio(request: HttpRequest, pk: int) -> HttpResponse:
    media = voicemail_audio_get(office=request.office, pk=pk)  # type: ignore[attr-defined]
    if media is None:
        raise Http404("No such recording.")
    playable = media.content_type in AUDIO_TYPES
    response = FileResponse(
        media.file.open("rb"),
        content_type=media.content_type if playable else "application/octet-stream",
        as_attachment=not playable,
        filename=media.file.name.rsplit("/", 1)[-1],
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response  # type: ignore[return-value]  # a streaming response; office_view passes it through


@require_GET
@office_view()
def call_in_list(request: HttpRequest) -> HttpResponse:
    office = request.office  # type: ignore[attr-defined]
    context = {
        "summaries": tally_summaries(office=office),
        "issues": issue_call_in_summaries(office=office),
    }
    return render(request, "messages/voice/call_in_list.html", context)


@require_GET
@office_view()
def call_in_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The campaign's page; an htmx request (its own poll) gets only the tally partial."""
    office = request.office  # type: ignore[attr-defined]
    campaign = call_in_campaign_get(office=office, pk=pk)
    if campaign is None:
        raise Http404("No such campaign.")
    context = {
        "campaign": campaign,
        "summary": tally_summary(office=office, campaign=campaign),
        "recent": list(call_in_recent_tallies(office=office, campaign=campaign)),
        "refresh_seconds": TALLY_REFRESH_SECONDS if campaign.is_active else None,
    }
    is_poll = bool(request.htmx) and request.htmx.target == "call-in-tally"  # type: ignore[attr-defined]
    template = "messages/voice/_call_in_tally.html" if is_poll else "messages/voice/call_in_detail.html"
    response = render(request, template, context)
    # One URL, two bodies: a cache (or the back button) must not hand the partial back as the page.
    patch_vary_headers(response, ["HX-Request"])
    if is_poll:
        response["Cache-Control"] = "no-store"
    return response


class CallInSwitchForm(forms.Form):
    active = forms.TypedChoiceField(choices=[("1", "on"), ("0", "off")], coerce=lambda value: value == "1")
    back_to = forms.ChoiceField(choices=[("detail", "detail"), ("list", "list")], required=False)


@require_POST
@office_view(roles=WRITE_ROLES)
def call_in_switch(request: HttpRequest, pk: int) -> HttpResponse:
    office = request.office  # type: ignore[attr-defined]
    if (
        call_in_campaign_get(office=office, pk=pk) is None
    ):  # another office's campaign: 404 whatever the input
        raise Http404("No such campaign.")
    form = CallInSwitchForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Say whether to switch the campaign on (active=1) or off (active=0).")
    try:
        result = call_in_campaign_switch(
            office=office,
            campaign_id=pk,
            is_active=form.cleaned_data["active"],
            switched_by=request.user,  # type: ignore[arg-type]  # office_view: a logged-in user
        )
    except CallInCampaignNotFound:
        raise Http404("No such campaign.") from None
    title = result.campaign.title
    if not result.changed:
        flash.info(request, f"“{title}” already was {'on' if result.campaign.is_active else 'off'}.")
    elif result.campaign.is_active:
        others = "".join(f" “{other}” was switched off." for other in result.switched_off)
        flash.success(request, f"“{title}” is live: new callers hear its menu first.{others}")
    else:
        flash.success(request, f"“{title}” is off: new callers go straight to the usual menu.")
    if form.cleaned_data["back_to"] == "list":
        return redirect("messages:call-in-list", office_slug=office.slug)
    return redirect("messages:call-in-detail", office_slug=office.slug, pk=result.campaign.pk)


@require_GET
@office_view()
def call_in_tally(request: HttpRequest, pk: int) -> JsonResponse:
    office = request.office  # type: ignore[attr-defined]
    campaign = call_in_campaign_get(office=office, pk=pk)
    if campaign is None:
        raise Http404("No such campaign.")
    response = JsonResponse(tally_summary(office=office, campaign=campaign).as_dict())
    response["Cache-Control"] = "no-store"
    return response


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
        self.fields["to_number"].choices = [(number, number) for number in numbers]  # type: ignore[attr-defined]

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
def call_simulator(request: HttpRequest) -> HttpResponse:
    office = request.office  # type: ignore[attr-defined]
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
                    failed = next(e for e in trace.exchanges if not 200 <= e.status < 300)
                    flash.error(
                        request,
                        f"The webhook {failed.path} answered HTTP {failed.status}; see the server log.",
                    )
            return redirect("messages:voice-simulator", office_slug=office.slug)
    else:
        form = SimulatedCallForm(numbers=numbers, initial={"from_number": fictional_number()})
    recent = calls_by_sid(office=office, sids=request.session.get("voice_simulator_calls", []))
    return render(
        request,
        "messages/voice/simulator.html",
        {"form": form, "has_numbers": bool(numbers), "recent": recent},
    )
