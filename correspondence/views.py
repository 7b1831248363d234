"""Form letters and bulk replies, under ``/o/<office_slug>/`` (namespace ``correspondence``).

Plain forms and redirects, so it all works without JavaScript; the progress page refreshes its counts with
htmx polling while the bulk reply is sending.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import Any, cast

from django import forms
from django.contrib import messages as flash
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from correspondence import merge, selectors
from correspondence.models import BulkStatus, SkipReason
from correspondence.services import bulk as bulk_service
from correspondence.services import letters as letter_service
from messages.filters import FILTER_PARAMS
from messages.models import Tag
from offices.tenancy import WRITE_ROLES, OfficeRequest, office_view

POLL_SECONDS = 2
MINUTE = 60.0


class LetterForm(forms.Form):
    name = forms.CharField(max_length=letter_service.NAME_MAX)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), validators=[merge.validate])
    tags = forms.TypedMultipleChoiceField(coerce=int, required=False)

    def __init__(self, *args: Any, tags: list[Tag], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.TypedMultipleChoiceField, self.fields["tags"]).choices = [(t.pk, t.name) for t in tags]


def _tags(request: OfficeRequest) -> list[Tag]:
    return list(Tag.objects.filter(office=request.office).order_by("name"))


def _letter_or_404(request: OfficeRequest, pk: int) -> Any:
    try:
        return letter_service.letter_get(office=request.office, pk=pk)
    except letter_service.LetterNotFound as exc:
        raise Http404("No such letter.") from exc


@require_GET
@office_view()
def letter_list(request: OfficeRequest) -> HttpResponse:
    show_retired = request.GET.get("retired") == "1"
    return render(
        request,
        "correspondence/letter_list.html",
        {
            "letters": selectors.letters(office=request.office, include_retired=show_retired),
            "show_retired": show_retired,
            "fields": merge.FIELD_LABELS,
        },
    )


@require_http_methods(["GET", "POST"])
@office_view(roles=WRITE_ROLES)
def letter_new(request: OfficeRequest) -> HttpResponse:
    tags = _tags(request)
    form = LetterForm(request.POST or None, tags=tags)
    if request.method == "POST" and form.is_valid():
        try:
            letter = letter_service.letter_create(
                office=request.office,
                actor=request.user,
                name=form.cleaned_data["name"],
                body=form.cleaned_data["body"],
                tag_ids=form.cleaned_data["tags"],
            )
        except letter_service.LetterRejected as exc:
            form.add_error(exc.field or None, exc.reason)
        else:
            flash.success(request, f"“{letter.name}” saved as a draft.")
            return redirect("correspondence:letter", office_slug=request.office.slug, pk=letter.pk)
    return render(
        request,
        "correspondence/letter_form.html",
        {"form": form, "fields": merge.FIELD_LABELS},
        status=_status(form),
    )


def _status(form: forms.Form) -> int:
    return 400 if form.is_bound and form.errors else 200


@require_http_methods(["GET", "POST"])
@office_view()
def letter_detail(request: OfficeRequest, pk: int) -> HttpResponse:
    letter = _letter_or_404(request, pk)
    latest = letter_service.latest_version(letter=letter)
    tags = _tags(request)
    initial = {"name": letter.name, "body": latest.body, "tags": [t.pk for t in letter.tags.all()]}
    form = LetterForm(request.POST or None, tags=tags, initial=initial)
    if request.method == "POST":
        if not request.membership.can_write:
            raise PermissionDenied("Officials only read.")
        if form.is_valid():
            try:
                letter_service.letter_update(
                    office=request.office,
                    actor=request.user,
                    pk=letter.pk,
                    name=form.cleaned_data["name"],
                    body=form.cleaned_data["body"],
                    tag_ids=form.cleaned_data["tags"],
                )
            except letter_service.LetterRejected as exc:
                form.add_error(exc.field or None, exc.reason)
            else:
                flash.success(request, "Saved. A changed text is a new draft version.")
                return redirect("correspondence:letter", office_slug=request.office.slug, pk=letter.pk)
    values = bulk_service.office_merge_values(office=request.office)
    preview = bulk_service.render_for(merge.parse(latest.body), values, "Maria", "Lopez")
    return render(
        request,
        "correspondence/letter_detail.html",
        {
            "letter": letter,
            "latest": latest,
            "versions": selectors.letter_versions(office=request.office, letter=letter),
            "form": form,
            "fields": merge.FIELD_LABELS,
            "preview": preview,
            "may_approve": request.membership.may_approve_letters,
        },
        status=_status(form),
    )


def _letter_action(request: OfficeRequest, pk: int, action: str) -> HttpResponse:
    office = request.office
    actor: AbstractBaseUser = request.user
    _letter_or_404(request, pk)  # another office's letter is a 404 before any rights are weighed
    try:
        if action == "approve":
            number = request.POST.get("version", "")
            approval = letter_service.letter_approve(
                office=office,
                membership=request.membership,
                pk=pk,
                version_number=int(number) if number.isdigit() else None,
            )
            flash.success(request, f"Version {approval.version.number} approved: bulk replies now send it.")
        elif action == "request":
            version = letter_service.approval_request(office=office, actor=actor, pk=pk)
            flash.success(request, f"Approval requested for version {version.number}.")
        else:
            letter_service.letter_retire(office=office, actor=actor, pk=pk)
            flash.success(request, "Retired: it is no longer offered for new bulk replies.")
    except letter_service.LetterNotFound as exc:
        raise Http404("No such letter.") from exc
    except letter_service.LetterRejected as exc:
        flash.error(request, exc.reason)
    return redirect("correspondence:letter", office_slug=office.slug, pk=pk)


def _post_action(
    handler: Callable[[OfficeRequest, int, str], HttpResponse], action: str
) -> Callable[..., Any]:
    """A POST-only view of staff and admins that runs ``handler`` for ``action`` on the object ``pk``."""

    @require_POST
    @office_view(roles=WRITE_ROLES)
    def view(request: OfficeRequest, pk: int) -> HttpResponse:
        return handler(request, pk, action)

    view.__name__ = view.__qualname__ = f"{handler.__name__.lstrip('_')}_{action}"
    return view


letter_approve = _post_action(_letter_action, "approve")
letter_request_approval = _post_action(_letter_action, "request")
letter_retire = _post_action(_letter_action, "retire")


# --- Bulk replies ------------------------------------------------------------------------------------------


@require_GET
@office_view()
def bulk_reply_list(request: OfficeRequest) -> HttpResponse:
    return render(
        request,
        "correspondence/bulk_reply_list.html",
        {"bulk_replies": selectors.bulk_replies(office=request.office)[:100]},
    )


def _audience_from_inbox(post: Any) -> bulk_service.Audience:
    if post.get("scope") == "matching":
        return bulk_service.Audience(
            filter={
                key[2:]: value
                for key, value in post.items()
                if key.startswith("f_") and key[2:] in FILTER_PARAMS
            }
        )
    if post.get("audience_tag", "").isdigit():
        return bulk_service.Audience(tag=int(post["audience_tag"]))
    ids = [int(v) for v in post.getlist("ids") if v.isdigit() and 0 < int(v) < 2**63]
    if not ids:
        raise bulk_service.BulkReplyRejected(
            "Select conversations first, or tick “all matching this filter”."
        )
    return bulk_service.Audience(conversations=tuple(dict.fromkeys(ids)))


@require_POST
@office_view(roles=WRITE_ROLES)
def bulk_reply_new(request: OfficeRequest) -> HttpResponse:
    """From the inbox's bulk bar (a selection or all matching) or a tag: a draft, shown as its preview."""
    office = request.office
    config = bulk_service.correspondence_settings_for(office=office)
    letter_id = request.POST.get("letter", "")
    letters = list(selectors.approved_letters(office=office))
    if not letter_id and config.require_approved_letter:
        if not letters:
            flash.error(
                request, "There is no approved form letter yet. Write one and have it approved first."
            )
            return redirect("correspondence:letters", office_slug=office.slug)
        letter_id = str(letters[0].pk)
    try:
        bulk = bulk_service.bulk_reply_create(
            office=office,
            actor=request.user,
            audience=_audience_from_inbox(request.POST),
            letter_id=int(letter_id) if letter_id.isdigit() else None,
            body=request.POST.get("body") if not letter_id else None,
            skip_replied=request.POST.get("skip_replied") == "1",
        )
    except bulk_service.BulkReplyNotFound as exc:
        raise Http404(exc.reason) from exc
    except bulk_service.BulkReplyRejected as exc:
        flash.error(request, f"No bulk reply was made. {exc.reason}")
        return redirect("messages:inbox", office_slug=office.slug)
    return redirect("correspondence:bulk-reply", office_slug=office.slug, pk=bulk.pk)


def _bulk_or_404(request: OfficeRequest, pk: int) -> Any:
    try:
        return bulk_service.bulk_reply_get(office=request.office, pk=pk)
    except bulk_service.BulkReplyNotFound as exc:
        raise Http404("No such bulk reply.") from exc


@require_http_methods(["GET", "POST"])
@office_view()
def bulk_reply_detail(request: OfficeRequest, pk: int) -> HttpResponse:
    """A draft's preview (where the letter, skip option and send time are chosen), else its progress."""
    bulk = _bulk_or_404(request, pk)
    office = request.office
    if bulk.status == BulkStatus.DRAFT:
        if request.method == "POST":
            if not request.membership.can_write:
                raise PermissionDenied("Officials only read.")
            return _redraft(request, bulk)
        preview = bulk_service.bulk_reply_preview(office=office, bulk=bulk)
        return render(
            request,
            "correspondence/bulk_reply_preview.html",
            {
                "bulk": bulk,
                "preview": preview,
                "exclusions": [(SkipReason(k).label, v) for k, v in preview.exclusions.items()],
                "letters": selectors.approved_letters(office=office),
                "config": bulk_service.correspondence_settings_for(office=office),
                "minutes": round(preview.seconds / MINUTE) if preview.seconds >= MINUTE else 0,
            },
        )
    return render(request, "correspondence/bulk_reply_progress.html", _progress_context(request, bulk))


def _redraft(request: OfficeRequest, bulk: Any) -> HttpResponse:
    """Change the letter, the skip option or the send time of a draft: a fresh draft for the same audience."""
    letter_id = request.POST.get("letter", "")
    send_at_raw = request.POST.get("send_at", "").strip()
    send_at = None
    if send_at_raw:
        parsed = parse_datetime(send_at_raw)
        if parsed is None:
            flash.error(request, "The send time is not a date and time.")
            return redirect("correspondence:bulk-reply", office_slug=request.office.slug, pk=bulk.pk)
        send_at = timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed
    try:
        fresh = bulk_service.bulk_reply_redraft(
            office=request.office,
            actor=request.user,
            pk=bulk.pk,
            letter_id=int(letter_id) if letter_id.isdigit() else None,
            body=request.POST.get("body") if not letter_id.isdigit() else None,
            skip_replied=request.POST.get("skip_replied") == "1",
            send_at=send_at,
        )
    except bulk_service.BulkReplyRejected as exc:
        flash.error(request, exc.reason)
        return redirect("correspondence:bulk-reply", office_slug=request.office.slug, pk=bulk.pk)
    return redirect("correspondence:bulk-reply", office_slug=request.office.slug, pk=fresh.pk)


def _progress_context(request: OfficeRequest, bulk: Any) -> dict[str, Any]:
    progress = selectors.bulk_reply_progress(office=request.office, bulk=bulk)
    return {
        "bulk": bulk,
        "progress": progress,
        "states": [(state, progress.counts[state]) for state in selectors.PROGRESS_STATES],
        "polling": bulk.status in (BulkStatus.SENDING, BulkStatus.SCHEDULED) or not progress.prepared,
        "poll_seconds": POLL_SECONDS,
    }


@require_GET
@office_view()
def bulk_reply_progress(request: OfficeRequest, pk: int) -> HttpResponse:
    bulk = _bulk_or_404(request, pk)
    return render(request, "correspondence/_bulk_reply_progress.html", _progress_context(request, bulk))


def _control(request: OfficeRequest, pk: int, action: str) -> HttpResponse:
    office = request.office
    services = {
        "start": bulk_service.bulk_reply_start,
        "pause": bulk_service.bulk_reply_pause,
        "resume": bulk_service.bulk_reply_resume,
        "cancel": bulk_service.bulk_reply_cancel,
    }
    done = {
        "start": "Started.",
        "pause": "Paused.",
        "resume": "Resumed.",
        "cancel": "Cancelled: nothing more is sent.",
    }
    try:
        services[action](office=office, actor=request.user, pk=pk)
    except bulk_service.BulkReplyNotFound as exc:
        raise Http404("No such bulk reply.") from exc
    except bulk_service.BulkReplyRejected as exc:
        flash.error(request, exc.reason)
    else:
        flash.success(request, done[action])
    return redirect("correspondence:bulk-reply", office_slug=office.slug, pk=pk)


bulk_reply_start = _post_action(_control, "start")
bulk_reply_pause = _post_action(_control, "pause")
bulk_reply_resume = _post_action(_control, "resume")
bulk_reply_cancel = _post_action(_control, "cancel")


def csv_safe(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting with = + - @ (or a tab or CR) gets a leading quote.
    A phone number such as +14155550100 is kept readable the same way, instead of becoming a formula or a
    number in scientific notation."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@office_view()
def bulk_reply_report_csv(request: OfficeRequest, pk: int) -> StreamingHttpResponse:
    bulk = _bulk_or_404(request, pk)
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(
            ["name", "phone", "conversation", "state", "reason", "sent_at", "time_zone", "text"]
        )
        for row in selectors.report_rows(office=request.office, bulk=bulk):
            yield writer.writerow(
                [
                    csv_safe(row.name),
                    csv_safe(row.phone),
                    request.build_absolute_uri(
                        reverse(
                            "messages:conversation",
                            kwargs={"office_slug": request.office.slug, "pk": row.conversation_id},
                        )
                    ),
                    row.state,
                    csv_safe(row.reason),
                    row.sent_at.isoformat() if row.sent_at else "",
                    row.time_zone,
                    csv_safe(row.body),
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="bulk-reply-{bulk.pk}.csv"'
    return response


@require_GET
@office_view()
def bulk_reply_report(request: OfficeRequest, pk: int) -> HttpResponse:
    bulk = _bulk_or_404(request, pk)
    context = _progress_context(request, bulk)
    context["rows"] = list(selectors.report_rows(office=request.office, bulk=bulk))[:1000]
    return render(request, "correspondence/bulk_reply_report.html", context)
