"""Voice hotline pages, under ``/o/<office_slug>/voice/``: thin adapters over selectors and services.

- voicemail playback: the recording, streamed from our storage to members of the office only (never a
  public Twilio URL);
- call-in tallies: the count per campaign and per issue; a campaign's page polls its own tally partial (htmx)
  while the campaign is live, and a JSON twin serves scripts; staff switch a campaign on or off.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages as flash
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from common.files import stored_file_response
from offices.tenancy import WRITE_ROLES, OfficeRequest, office_view
from voice.selectors.calls import voicemail_audio_get
from voice.selectors.tallies import (
    call_in_campaign_get,
    call_in_recent_tallies,
    issue_call_in_summaries,
    tally_summaries,
    tally_summary,
)
from voice.services.campaigns import CallInCampaignNotFound, call_in_campaign_switch

# Served as themselves so <audio> plays them; anything else (never expected) downloads as bytes.
AUDIO_TYPES = frozenset({"audio/mpeg", "audio/wav", "audio/x-wav"})
TALLY_REFRESH_SECONDS = 10


@require_GET
@office_view()
def voicemail_audio(request: OfficeRequest, pk: int) -> FileResponse:
    media = voicemail_audio_get(office=request.office, pk=pk)
    if media is None:
        raise Http404("No such recording.")
    return stored_file_response(media.file, content_type=media.content_type, inline_types=AUDIO_TYPES)


@require_GET
@office_view()
def call_in_list(request: OfficeRequest) -> HttpResponse:
    office = request.office
    context = {
        "summaries": tally_summaries(office=office),
        "issues": issue_call_in_summaries(office=office),
    }
    return render(request, "voice/call_in_list.html", context)


@require_GET
@office_view()
def call_in_detail(request: OfficeRequest, pk: int) -> HttpResponse:
    """The campaign's page; an htmx request (its own poll) gets only the tally partial."""
    office = request.office
    campaign = call_in_campaign_get(office=office, pk=pk)
    if campaign is None:
        raise Http404("No such campaign.")
    context = {
        "campaign": campaign,
        "summary": tally_summary(office=office, campaign=campaign),
        "recent": list(call_in_recent_tallies(office=office, campaign=campaign)),
        "refresh_seconds": TALLY_REFRESH_SECONDS if campaign.is_active else None,
    }
    is_poll = bool(request.htmx) and request.htmx.target == "call-in-tally"
    template = "voice/_call_in_tally.html" if is_poll else "voice/call_in_detail.html"
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
def call_in_switch(request: OfficeRequest, pk: int) -> HttpResponse:
    office = request.office
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
            switched_by=request.user,
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
        return redirect("voice:call-in-list", office_slug=office.slug)
    return redirect("voice:call-in-detail", office_slug=office.slug, pk=result.campaign.pk)


@require_GET
@office_view()
def call_in_tally(request: OfficeRequest, pk: int) -> JsonResponse:
    office = request.office
    campaign = call_in_campaign_get(office=office, pk=pk)
    if campaign is None:
        raise Http404("No such campaign.")
    response = JsonResponse(tally_summary(office=office, campaign=campaign).as_dict())
    response["Cache-Control"] = "no-store"
    return response
