"""Bulk triage from the inbox: on the selected rows, or on every conversation matching the current filter.

"All matching" is never applied straight from the inbox: the first POST answers a confirmation page stating
how many conversations the filter matches (and which filter), carrying that selection's fingerprint; only the
POST from that page acts, and if the filter matches another set by then, the page is shown again with the new
number. Plain forms and redirects throughout, so it all works without JavaScript.

A bulk close leaves an undo offer in the session (``UNDO_SESSION_KEY``), which the inbox shows as an "Undo"
button while ``bulk.undo_window()`` lasts; ``bulk_undo`` reopens what is still closed by it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django import forms
from django.contrib import messages as flash
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from messages.filters import FILTER_PARAMS, ConversationFilter
from messages.selectors.inbox import InboxLookups, inbox_conversations, inbox_lookups
from messages.services import bulk
from messages.views.forms import ME, NOBODY, SNOOZE_PRESETS, BulkForm, snooze_preset_until
from offices.models import Office
from offices.tenancy import WRITE_ROLES, OfficeRequest, office_view

UNDO_SESSION_KEY = "civicdesk_bulk_undo"
# Fields of the confirmation form that are the confirmation itself, not the action being confirmed.
_CONFIRMATION_FIELDS = frozenset({"csrfmiddlewaretoken", "confirm", "expected_count", "expected_digest"})
_DIGEST = re.compile(r"^[0-9a-f]{24}$")


@dataclass(frozen=True, slots=True)
class UndoOffer:
    """A bulk close this session can still undo: shown in the inbox as an "Undo" button."""

    bulk_action_id: int
    count: int
    until: datetime


def undo_offer(request: OfficeRequest) -> UndoOffer | None:
    """The session's undo offer for this office, while it lasts (reads the session only: no query)."""
    raw = request.session.get(UNDO_SESSION_KEY)
    if not isinstance(raw, dict) or raw.get("office") != request.office.pk:
        return None
    try:
        offer = UndoOffer(int(raw["id"]), int(raw["count"]), datetime.fromisoformat(str(raw["until"])))
    except (KeyError, TypeError, ValueError):
        return None
    return offer if offer.until.tzinfo is not None and offer.until > timezone.now() else None


def _offer_undo(request: OfficeRequest, result: bulk.BulkResult) -> None:
    if result.action != "close" or result.bulk_action_id is None:
        return
    request.session[UNDO_SESSION_KEY] = {
        "office": request.office.pk,
        "id": result.bulk_action_id,
        "count": result.changed,
        "until": (timezone.now() + bulk.undo_window()).isoformat(),
    }


def _forget_undo(request: OfficeRequest, bulk_action_id: int) -> None:
    raw = request.session.get(UNDO_SESSION_KEY)
    if isinstance(raw, dict) and raw.get("id") == bulk_action_id:
        del request.session[UNDO_SESSION_KEY]


def _back(request: OfficeRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=False
    ):
        return redirect(target)
    return redirect(reverse("messages:inbox", kwargs={"office_slug": request.office.slug}))


def _confirmed(post: QueryDict) -> bulk.Fingerprint | None:
    """The selection the person confirmed, from the confirmation page's form; None when not confirmed yet."""
    if post.get("confirm") != "1":
        return None
    count, digest = post.get("expected_count", ""), post.get("expected_digest", "")
    if not count.isdigit() or not _DIGEST.match(digest):
        return None
    return bulk.Fingerprint(int(count), digest)


@require_POST
@office_view(roles=WRITE_ROLES)
def bulk_action(request: OfficeRequest) -> HttpResponse:
    """Apply one action atomically; report "412 conversations tagged". A foreign id anywhere is a 404.

    On "all matching", ask first (``_confirmation``), and act only on the set that was confirmed."""
    office = request.office
    actor: AbstractBaseUser = request.user
    lookups = inbox_lookups(office=office)
    form = BulkForm(request.POST, lookups=lookups)
    if not form.is_valid():
        errors = " ".join(str(e) for errs in form.errors.values() for e in errs)
        flash.error(request, f"Nothing was changed. {errors}")
        return _back(request)
    data = form.cleaned_data
    filterset = None
    if data.get("scope") == "matching":
        # "All N matching": the filter travels with the form (as f_status, f_tag, ...), and is re-run here.
        filter_data = {key[2:]: value for key, value in request.POST.items() if key.startswith("f_")}
        filterset = ConversationFilter(
            filter_data, inbox_conversations(office=office), office=office, user=actor, lookups=lookups
        )
        if not filterset.is_valid():
            flash.error(
                request, "Nothing was changed: the filter is not valid any more. Reload and try again."
            )
            return _back(request)
        confirmed = _confirmed(request.POST)
        if confirmed is None:
            try:
                fingerprint = bulk.matching_fingerprint(office=office, queryset=filterset.qs)
            except bulk.BulkRejected as exc:
                flash.error(request, f"Nothing was changed. {exc.reason}")
                return _back(request)
            return _confirmation(request, data, filterset, lookups, fingerprint)
        selection = bulk.Selection.of_matching(filterset.qs, confirmed=confirmed)
    else:
        selection = bulk.Selection.of_ids(data["ids"])
    try:
        result = _apply(data, office=office, actor=actor, selection=selection, lookups=lookups)
    except bulk.BulkSelectionNotFound as exc:
        raise Http404("No such conversation.") from exc
    except bulk.BulkSelectionChanged as exc:
        if filterset is None:  # cannot happen: only "all matching" carries a confirmed fingerprint
            raise
        return _confirmation(request, data, filterset, lookups, exc.now, changed=exc.reason)
    except bulk.BulkRejected as exc:
        flash.error(request, f"Nothing was changed. {exc.reason}")
        return _back(request)
    flash.success(request, result.summary)
    _offer_undo(request, result)
    return _back(request)


@require_POST
@office_view(roles=WRITE_ROLES)
def bulk_undo(request: OfficeRequest, pk: int) -> HttpResponse:
    """Undo a bulk close of this office (another office's, or a missing one, is a 404)."""
    try:
        result = bulk.bulk_close_undo(office=request.office, actor=request.user, bulk_action_id=pk)
    except bulk.BulkSelectionNotFound as exc:
        raise Http404("No such bulk action.") from exc
    except bulk.BulkRejected as exc:
        _forget_undo(request, pk)
        flash.error(request, f"Nothing was changed. {exc.reason}")
        return _back(request)
    _forget_undo(request, pk)
    flash.success(request, result.summary)
    return _back(request)


def _choice_label(field: forms.Field, value: object) -> str:
    choices = cast(list[tuple[Any, Any]], getattr(field, "choices", []))
    return next((str(label) for key, label in choices if str(key) == str(value)), str(value))


def filter_summary(filterset: ConversationFilter) -> list[tuple[str, str]]:
    """The filter, in words: (label, value) for the status and every other filter that is set."""
    form = filterset.form
    summary = []
    for key in FILTER_PARAMS:
        value = form.cleaned_data.get(key)
        if value in (None, ""):
            continue
        field = form.fields[key]
        shown = value.isoformat() if hasattr(value, "isoformat") else _choice_label(field, value)
        summary.append((str(field.label), f"“{shown}”" if key == "q" else shown))
    return summary


def action_sentence(data: dict[str, Any], count: int, *, lookups: InboxLookups) -> str:
    """What the action will do to ``count`` conversations, as the confirmation button and heading say it."""
    many = f"{count:,} conversation{'s' if count != 1 else ''}"
    action = data["action"]
    if action == "close":
        return f"Close {many}"
    if action in ("tag", "untag"):
        tag = lookups.tag(data["tag"])
        name = tag.name if tag is not None else ""
        return (
            f"Add the tag “{name}” to {many}" if action == "tag" else f"Remove the tag “{name}” from {many}"
        )
    if action == "assign":
        choice = data["assignee"]
        if choice == NOBODY:
            return f"Unassign {many}"
        who = "you" if choice == ME else _choice_label(BulkForm(lookups=lookups).fields["assignee"], choice)
        return f"Assign {many} to {who}"
    if action == "queue":
        choice = data["queue"]
        if choice == NOBODY:
            return f"Take {many} out of their queue"
        queue = lookups.queue(int(choice))
        return f"Move {many} to the queue “{queue.name if queue is not None else ''}”"
    return f"Snooze {many} until {dict(SNOOZE_PRESETS).get(data['snooze'], data['snooze']).lower()}"


def _confirmation(
    request: OfficeRequest,
    data: dict[str, Any],
    filterset: ConversationFilter,
    lookups: InboxLookups,
    fingerprint: bulk.Fingerprint,
    *,
    changed: str = "",
) -> HttpResponse:
    """The page that asks "Close 154 conversations?" before acting on everything a filter matches."""
    carried = [
        (key, value)
        for key, values in request.POST.lists()
        if key not in _CONFIRMATION_FIELDS
        for value in values
    ]
    target = request.POST.get("next", "")
    safe = target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=False
    )
    context = {
        "sentence": action_sentence(data, fingerprint.count, lookups=lookups),
        "count": fingerprint.count,
        "fingerprint": fingerprint,
        "fingerprint_fields": {
            "expected_count": str(fingerprint.count),
            "expected_digest": fingerprint.digest,
        },
        "filter_summary": filter_summary(filterset),
        "carried": carried,
        "changed": changed,
        "cancel_url": target
        if safe
        else reverse("messages:inbox", kwargs={"office_slug": request.office.slug}),
        "undo_minutes": int(bulk.undo_window().total_seconds() // 60),
        "is_close": data["action"] == "close",
    }
    return render(request, "messages/bulk_confirm.html", context)


def _apply(
    data: dict[str, Any],
    *,
    office: Office,
    actor: AbstractBaseUser,
    selection: bulk.Selection,
    lookups: InboxLookups,
) -> bulk.BulkResult:
    action = data["action"]
    if action == "close":
        return bulk.bulk_close(office=office, actor=actor, selection=selection)
    if action in ("tag", "untag"):
        tag = lookups.tag(data["tag"])
        if tag is None:  # cannot happen: the form's choices are exactly lookups.tags
            raise bulk.BulkSelectionNotFound("No such tag.")
        service = bulk.bulk_tag if action == "tag" else bulk.bulk_untag
        return service(office=office, actor=actor, selection=selection, tag=tag)
    if action == "assign":
        choice = data["assignee"]
        assignee: AbstractBaseUser | None
        if choice == ME:
            assignee = actor
        elif choice == NOBODY:
            assignee = None
        else:
            assignee = next(m.user for m in lookups.assignable if str(m.user_id) == choice)
        return bulk.bulk_assign(office=office, actor=actor, selection=selection, assignee=assignee)
    if action == "queue":
        choice = data["queue"]
        queue = None if choice == NOBODY else lookups.queue(int(choice))
        return bulk.bulk_move_queue(office=office, actor=actor, selection=selection, queue=queue)
    until = snooze_preset_until(data["snooze"], office=office)
    return bulk.bulk_snooze(office=office, actor=actor, selection=selection, until=until)
