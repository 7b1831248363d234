"""Bulk triage from the inbox: on the selected rows, or on every conversation matching the current filter."""

from __future__ import annotations

from typing import Any

from django.contrib import messages as flash
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from messages.filters import ConversationFilter
from messages.selectors.inbox import InboxLookups, inbox_conversations, inbox_lookups
from messages.services import bulk
from messages.views.forms import ME, NOBODY, BulkForm, snooze_preset_until
from offices.models import Office
from offices.tenancy import WRITE_ROLES, OfficeRequest, office_view


def _back(request: OfficeRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=False
    ):
        return redirect(target)
    return redirect(reverse("messages:inbox", kwargs={"office_slug": request.office.slug}))


@require_POST
@office_view(roles=WRITE_ROLES)
def bulk_action(request: OfficeRequest) -> HttpResponse:
    """Apply one action atomically; report "412 conversations tagged". A foreign id anywhere is a 404."""
    office = request.office
    actor: AbstractBaseUser = request.user
    lookups = inbox_lookups(office=office)
    form = BulkForm(request.POST, lookups=lookups)
    if not form.is_valid():
        errors = " ".join(str(e) for errs in form.errors.values() for e in errs)
        flash.error(request, f"Nothing was changed. {errors}")
        return _back(request)
    data = form.cleaned_data
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
        selection = bulk.Selection.of_matching(filterset.qs)
    else:
        selection = bulk.Selection.of_ids(data["ids"])
    try:
        result = _apply(data, office=office, actor=actor, selection=selection, lookups=lookups)
    except bulk.BulkSelectionNotFound as exc:
        raise Http404("No such conversation.") from exc
    except bulk.BulkRejected as exc:
        flash.error(request, f"Nothing was changed. {exc.reason}")
        return _back(request)
    flash.success(request, result.summary)
    return _back(request)


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
