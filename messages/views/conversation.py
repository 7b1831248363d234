"""One conversation: the timeline, the reply composer, triage actions, the constituent panel, live updates."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import messages as flash
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from common.ids import MAX_ID_DIGITS
from constituents.selectors import consent_history
from messages.models import Conversation, Priority
from messages.segments import MAX_BODY_LENGTH, segment_info
from messages.selectors.inbox import InboxLookups, canned_responses, inbox_lookups
from messages.selectors.threads import (
    constituent_other_conversations,
    thread_get,
    thread_state_signature,
    thread_timeline,
    thread_timeline_since,
)
from messages.services import triage
from messages.services.canned import canned_render, merge_values
from messages.services.presence import replying_clear, replying_mark, replying_others
from messages.services.replies import ReplyRejected, reply_send
from messages.services.rules import ForeignObjectNotFound
from messages.views.forms import (
    ME,
    NOBODY,
    SNOOZE_PRESETS,
    AssignForm,
    ConstituentProfileForm,
    NoteForm,
    PriorityForm,
    QueueForm,
    SnoozeForm,
    TagForm,
)
from messages.views.inbox import poll_seconds
from offices.tenancy import WRITE_ROLES, OfficeRequest, office_view


def _thread(request: OfficeRequest, pk: int) -> Conversation:
    conversation = thread_get(office=request.office, pk=pk)
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def _conversation_url(request: OfficeRequest, conversation: Conversation) -> str:
    return reverse(
        "messages:conversation",
        kwargs={"office_slug": request.office.slug, "pk": conversation.pk},
    )


def _back(request: OfficeRequest, conversation: Conversation) -> HttpResponse:
    """After a write: where the form asked to go (a same-site path), else back to the conversation."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=False
    ):
        return redirect(target)
    return redirect(_conversation_url(request, conversation))


def _panel_context(
    request: OfficeRequest, conversation: Conversation, lookups: InboxLookups
) -> dict[str, Any]:
    office = request.office
    user_id = request.user.pk
    assigned = conversation.assignee_id
    return {
        "assign_form": AssignForm(
            lookups=lookups,
            initial={"assignee": ME if assigned == user_id else (str(assigned) if assigned else NOBODY)},
        ),
        "tag_choices": [t for t in lookups.tags if t.pk not in {tag.pk for tag in conversation.tags.all()}],
        "queue_form": QueueForm(lookups=lookups, initial={"queue": str(conversation.queue_id or NOBODY)}),
        "priority_form": PriorityForm(initial={"priority": conversation.priority}),
        "snooze_form": SnoozeForm(office=office),
        "snooze_presets": SNOOZE_PRESETS,
        "priorities": Priority.choices,
    }


@require_GET
@office_view()
def conversation_detail(request: OfficeRequest, pk: int) -> HttpResponse:
    office = request.office
    membership = request.membership
    conversation = _thread(request, pk)
    constituent = conversation.constituent
    timeline = thread_timeline(office=office, conversation=conversation)
    lookups = inbox_lookups(office=office)
    values = merge_values(office=office, constituent=constituent)
    canned = [(c, canned_render(body=c.body, values=values)) for c in canned_responses(office=office)]
    prefill = ""
    canned_id = request.GET.get("canned", "")
    if canned_id.isdigit():  # the no-JavaScript path of "insert canned response"
        prefill = next((text for c, text in canned if c.pk == int(canned_id)), "")
    if membership.can_write:
        triage.conversation_mark_read(conversation=conversation, reader=request.user)
    context = {
        "conversation": conversation,
        "constituent": constituent,
        "timeline": timeline,
        "since": timezone.now().isoformat(),
        "signature": thread_state_signature(conversation),
        "reply_token": uuid.uuid4().hex,
        "prefill": prefill,
        "segments": segment_info(prefill),
        "max_body": MAX_BODY_LENGTH,
        "canned": canned,
        "profile_form": ConstituentProfileForm(instance=constituent, prefix="profile"),
        "consent_events": list(consent_history(office=office, constituent_id=constituent.pk)[:20]),
        "other_conversations": constituent_other_conversations(
            office=office, constituent_id=constituent.pk, exclude_pk=conversation.pk
        ),
        "replying": replying_others(conversation=conversation, user=request.user),
        "poll_seconds": max(1, poll_seconds() // 2),
        "lookups": lookups,
        **_panel_context(request, conversation, lookups),
    }
    return render(request, "messages/conversation.html", context)


@require_POST
@office_view(roles=WRITE_ROLES)
def conversation_reply(request: OfficeRequest, pk: int) -> HttpResponse:
    conversation = _thread(request, pk)
    # Browsers submit a textarea's line breaks as CRLF; a text message uses LF (and the composer counts LF).
    body = request.POST.get("body", "").replace("\x00", "").replace("\r\n", "\n")
    try:
        reply_send(
            conversation=conversation,
            body=body,
            sent_by=request.user,
            idempotency_key=request.POST.get("token", "")[:64],
        )
    except ReplyRejected as exc:
        flash.error(request, exc.reason)
    else:
        replying_clear(conversation=conversation, user=request.user)
        info = segment_info(body)
        flash.success(request, f"Reply queued ({info.segments} segment{'s' if info.segments != 1 else ''}).")
    return redirect(_conversation_url(request, conversation))


# --- Triage actions: one POST endpoint, dispatched through a table of small handlers ---------------------

Handler = Callable[[OfficeRequest, Conversation, InboxLookups], str]


def _user(request: OfficeRequest) -> AbstractBaseUser:
    return request.user


def _invalid(form: Any) -> triage.TriageRejected:
    errors = [str(e) for field_errors in form.errors.values() for e in field_errors]
    return triage.TriageRejected(" ".join(errors) or "That change is not valid.")


def _assign(request: OfficeRequest, conversation: Conversation, lookups: InboxLookups) -> str:
    form = AssignForm(request.POST, lookups=lookups)
    if not form.is_valid():
        raise _invalid(form)
    choice = form.cleaned_data["assignee"]
    if choice == ME:
        assignee: AbstractBaseUser | None = _user(request)
    elif choice == NOBODY:
        assignee = None
    else:
        assignee = next(m.user for m in lookups.assignable if str(m.user_id) == choice)
    changed = triage.conversation_assign(conversation=conversation, assignee=assignee, actor=_user(request))
    who = (
        "nobody"
        if assignee is None
        else ("you" if assignee.pk == request.user.pk else assignee.get_username())
    )
    return f"Assigned to {who}." if changed else f"Already assigned to {who}."


def _claim(request: OfficeRequest, conversation: Conversation, lookups: InboxLookups) -> str:
    changed = triage.conversation_claim(conversation=conversation, actor=_user(request))
    return "Assigned to you." if changed else "Already yours."


def _tag_from(request: OfficeRequest, lookups: InboxLookups) -> Any:
    form = TagForm(request.POST, lookups=lookups)
    if not form.is_valid():
        raise _invalid(form)
    tag = lookups.tag(form.cleaned_data["tag"])
    if tag is None:  # cannot happen: the form's choices are exactly lookups.tags
        raise triage.TriageRejected("No such tag.")
    return tag


def _tag(request: OfficeRequest, conversation: Conversation, lookups: InboxLookups) -> str:
    tag = _tag_from(request, lookups)
    changed = triage.conversation_tag(conversation=conversation, tag=tag, actor=_user(request))
    return f"Tagged “{tag.name}”." if changed else f"Already tagged “{tag.name}”."


def _untag(request: OfficeRequest, conversation: Conversation, lookups: InboxLookups) -> str:
    tag = _tag_from(request, lookups)
    changed = triage.conversation_untag(conversation=conversation, tag=tag, actor=_user(request))
    return f"Removed tag “{tag.name}”." if changed else f"Was not tagged “{tag.name}”."


def _queue(request: OfficeRequest, conversation: Conversation, lookups: InboxLookups) -> str:
    form = QueueForm(request.POST, lookups=lookups)
    if not form.is_valid():
        raise _invalid(form)
    choice = form.cleaned_data["queue"]
    queue = None if choice == NOBODY else lookups.queue(int(choice))
    triage.conversation_move_queue(conversation=conversation, queue=queue, actor=_user(request))
    return f"Moved to {queue.name}." if queue is not None else "Taken out of its queue."


def _priority(request: OfficeRequest, conversation: Conversation, lookups: InboxLookups) -> str:
    form = PriorityForm(request.POST)
    if not form.is_valid():
        raise _invalid(form)
    priority = form.cleaned_data["priority"]
    triage.conversation_set_priority(conversation=conversation, priority=priority, actor=_user(request))
    return f"Priority set to {Priority(priority).label.lower()}."


def _snooze(request: OfficeRequest, conversation: Conversation, lookups: InboxLookups) -> str:
    form = SnoozeForm(request.POST, office=request.office)
    if not form.is_valid():
        raise _invalid(form)
    moment: datetime = form.cleaned_data["moment"]
    triage.conversation_snooze(conversation=conversation, until=moment, actor=_user(request))
    return f"Snoozed until {moment:%a %d %b, %H:%M}."


def _close(request: OfficeRequest, conversation: Conversation, lookups: InboxLookups) -> str:
    changed = triage.conversation_close(conversation=conversation, actor=_user(request))
    return "Conversation closed." if changed else "Conversation was already closed."


def _reopen(request: OfficeRequest, conversation: Conversation, lookups: InboxLookups) -> str:
    changed = triage.conversation_reopen(conversation=conversation, actor=_user(request))
    return "Conversation reopened." if changed else "Conversation is already open."


def _note(request: OfficeRequest, conversation: Conversation, lookups: InboxLookups) -> str:
    form = NoteForm(request.POST)
    if not form.is_valid():
        raise _invalid(form)
    triage.note_add(conversation=conversation, body=form.cleaned_data["body"], author=_user(request))
    return "Note added."


ACTIONS: dict[str, Handler] = {
    "assign": _assign,
    "claim": _claim,
    "tag": _tag,
    "untag": _untag,
    "queue": _queue,
    "priority": _priority,
    "snooze": _snooze,
    "close": _close,
    "reopen": _reopen,
    "note": _note,
}


@require_POST
@office_view(roles=WRITE_ROLES)
def conversation_triage(request: OfficeRequest, pk: int) -> HttpResponse:
    conversation = _thread(request, pk)
    handler = ACTIONS.get(request.POST.get("action", ""))
    if handler is None:
        return HttpResponseBadRequest("Unknown action.")
    lookups = inbox_lookups(office=request.office)
    try:
        flash.success(request, handler(request, conversation, lookups))
    except triage.TriageRejected as exc:
        flash.error(request, exc.reason)
    except ForeignObjectNotFound as exc:
        raise Http404(str(exc)) from exc  # another office's object: the answer for a missing one
    return _back(request, conversation)


@require_POST
@office_view(roles=WRITE_ROLES)
def constituent_update(request: OfficeRequest, pk: int) -> HttpResponse:
    """The constituent panel's profile form, posted from conversation ``pk``."""
    conversation = _thread(request, pk)
    constituent = conversation.constituent
    form = ConstituentProfileForm(request.POST, instance=constituent, prefix="profile")
    if not form.is_valid():
        errors = "; ".join(
            f"{form.fields[f].label}: {' '.join(str(m) for m in e)}"
            for f, e in form.errors.items()
            if f in form.fields
        )
        flash.error(request, f"Profile not saved. {errors or 'Check the values.'}")
        return _back(request, conversation)
    changes = {name: form.cleaned_data[name] for name in form.Meta.fields}
    # A ModelForm copies cleaned values onto its instance while validating; reload it, so the service (the
    # only writer) compares against what is stored.
    constituent.refresh_from_db()
    try:
        changed = triage.constituent_profile_update(constituent=constituent, changes=changes)
    except triage.TriageRejected as exc:
        flash.error(request, exc.reason)
    else:
        flash.success(request, "Profile saved." if changed else "Nothing to save: the profile was unchanged.")
    return _back(request, conversation)


# --- Live updates -------------------------------------------------------------------------------------------


def _int(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and len(raw) <= MAX_ID_DIGITS else 0


def _moment(raw: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(raw or "")
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@require_GET
@office_view()
def conversation_timeline(request: OfficeRequest, pk: int) -> HttpResponse:
    """The conversation poll: new timeline items, changed delivery statuses and state, who is replying."""
    office = request.office
    conversation = _thread(request, pk)
    update = thread_timeline_since(
        office=office,
        conversation=conversation,
        after_message_id=_int(request.GET.get("m")),
        after_event_id=_int(request.GET.get("e")),
        since=_moment(request.GET.get("since")),
    )
    signature = thread_state_signature(conversation)
    state_changed = signature != request.GET.get("sig", "")
    context: dict[str, Any] = {
        "conversation": conversation,
        "constituent": conversation.constituent,
        "update": update,
        "since": timezone.now().isoformat(),
        "signature": signature,
        "state_changed": state_changed,
        "replying": replying_others(conversation=conversation, user=request.user),
        "poll_seconds": max(1, poll_seconds() // 2),
    }
    if state_changed:
        lookups = inbox_lookups(office=office)
        context.update(lookups=lookups, **_panel_context(request, conversation, lookups))
    if update.new_items and request.membership.can_write:
        triage.conversation_mark_read(conversation=conversation, reader=request.user)
    return render(request, "messages/_timeline_updates.html", context)


@require_POST
@office_view(roles=WRITE_ROLES)
def conversation_presence(request: OfficeRequest, pk: int) -> HttpResponse:
    """Heartbeat from the composer while someone types a reply (``state=idle`` when they stop)."""
    conversation = _thread(request, pk)
    if request.POST.get("state") == "idle":
        replying_clear(conversation=conversation, user=request.user)
    else:
        replying_mark(conversation=conversation, user=request.user)
    return HttpResponse(status=204)
