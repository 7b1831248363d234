"""The staff inbox: thin adapters over selectors and services."""

from __future__ import annotations

import uuid

from django.contrib import messages as flash
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from civicdesk.tenancy import WRITE_ROLES, office_view
from messages.models import MediaStatus
from messages.segments import segment_info
from messages.selectors.inbox import inbox_conversations, inbox_page
from messages.selectors.threads import media_get, thread_events, thread_get, thread_messages
from messages.services.replies import ReplyRejected, reply_send


@require_GET
@office_view()
def inbox(request: HttpRequest) -> HttpResponse:
    office = request.office  # type: ignore[attr-defined]
    page = inbox_page(queryset=inbox_conversations(office=office), cursor=request.GET.get("after"))
    return render(request, "messages/inbox.html", {"page": page})


def _thread(request: HttpRequest, pk: int):  # type: ignore[no-untyped-def]
    conversation = thread_get(office=request.office, pk=pk)  # type: ignore[attr-defined]
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


@require_GET
@office_view()
def conversation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    office = request.office  # type: ignore[attr-defined]
    conversation = _thread(request, pk)
    context = {
        "conversation": conversation,
        "timeline": list(thread_messages(office=office, conversation=conversation)),
        "events": list(thread_events(office=office, conversation=conversation)),
        "reply_token": uuid.uuid4().hex,
    }
    return render(request, "messages/conversation.html", context)


@require_POST
@office_view(roles=WRITE_ROLES)
def conversation_reply(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _thread(request, pk)
    body = request.POST.get("body", "")
    try:
        reply_send(
            conversation=conversation,
            body=body,
            sent_by=request.user,  # type: ignore[arg-type]
            idempotency_key=request.POST.get("token", "")[:64],
        )
    except ReplyRejected as exc:
        flash.error(request, exc.reason)
    else:
        info = segment_info(body)
        flash.success(request, f"Reply queued ({info.segments} segment{'s' if info.segments != 1 else ''}).")
    return redirect("messages:conversation", office_slug=request.office.slug, pk=conversation.pk)  # type: ignore[attr-defined]


# Images render inline; everything else downloads, so a hostile file can never run in our origin.
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


@require_GET
@office_view()
def media_file(request: HttpRequest, pk: int) -> FileResponse:
    media = media_get(office=request.office, pk=pk)  # type: ignore[attr-defined]
    if media is None or media.status != MediaStatus.STORED or not media.file:
        raise Http404("No such media.")
    inline = media.content_type in INLINE_TYPES
    response = FileResponse(
        media.file.open("rb"),
        content_type=media.content_type if inline else "application/octet-stream",
        as_attachment=not inline,
        filename=media.file.name.rsplit("/", 1)[-1],
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response
