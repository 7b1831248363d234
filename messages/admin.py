from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from common.admin import RecordAdmin
from messages.models import (
    BulkAction,
    CannedResponse,
    Conversation,
    ConversationEvent,
    ConversationTag,
    CorrectionKind,
    Media,
    Message,
    MessageCorrection,
    StatusCallback,
    Tag,
    TriageQueue,
)
from messages.services.corrections import (
    MAX_REASON_LENGTH,
    MAX_REPLACEMENT_LENGTH,
    REDACTED_TEXT,
    CorrectionRejected,
    message_redact,
    redaction_refusal,
)
from offices.admin import OfficeScopedAdmin


@admin.register(Tag)
class TagAdmin(OfficeScopedAdmin):
    list_display = ["name", "kind", "color", "office"]
    list_filter = ["kind"]
    search_fields = ["name"]


@admin.register(TriageQueue)
class TriageQueueAdmin(OfficeScopedAdmin):
    list_display = ["name", "office", "description"]
    search_fields = ["name"]


@admin.register(Conversation)
class ConversationAdmin(OfficeScopedAdmin):
    list_display = [
        "pk",
        "constituent",
        "office",
        "status",
        "assignee",
        "queue",
        "priority",
        "last_activity_at",
    ]
    list_filter = ["status", "priority"]
    raw_id_fields = ["constituent", "assignee"]
    list_select_related = ["constituent", "office", "assignee", "queue"]


@admin.register(ConversationTag)
class ConversationTagAdmin(OfficeScopedAdmin):
    office_path = "conversation__office"
    list_display = ["conversation", "tag", "created_at"]
    raw_id_fields = ["conversation", "tag", "added_by"]


class RedactForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Shown in the conversation with your name, e.g. “A social security number”.",
    )
    replacement = forms.CharField(
        max_length=MAX_REPLACEMENT_LENGTH,
        initial=REDACTED_TEXT,
        required=False,
        help_text="What the message says from now on.",
    )


@admin.register(Message)
class MessageAdmin(RecordAdmin, OfficeScopedAdmin):
    """Messages are records: nobody edits them here. Their text can only be redacted, through
    ``messages.services.corrections`` (the Redact button), which records who did it, when and why."""

    list_display = ["pk", "conversation", "direction", "channel", "status", "provider_sid", "created_at"]
    list_filter = ["direction", "channel", "status"]
    search_fields = ["provider_sid", "from_number", "to_number"]
    raw_id_fields = ["conversation", "sent_by"]

    def get_urls(self) -> list[URLPattern]:
        redact = path(
            "<path:object_id>/redact/",
            self.admin_site.admin_view(self.redact_view),
            name="civicdesk_messages_message_redact",
        )
        return [redact, *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        message = self._scoped_message(request, object_id)
        extra = dict(extra_context or {})
        if (
            message is not None
            and redaction_refusal(message) is None
            and not message.corrections.filter(kind=CorrectionKind.REDACTION).exists()
        ):
            extra["redact_url"] = reverse("admin:civicdesk_messages_message_redact", args=[message.pk])
        return super().change_view(request, object_id, form_url, extra)

    def redact_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        # The scoped queryset (the user's offices, or all for a superuser) decides what may be redacted.
        message = self._scoped_message(request, object_id)
        if message is None or not self.has_view_permission(request, message):
            raise Http404("No such message.")
        change_url = reverse("admin:civicdesk_messages_message_change", args=[message.pk])
        form = RedactForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                correction = message_redact(
                    office=message.office,
                    message_id=message.pk,
                    by=request.user,  # type: ignore[arg-type]  # admin_view: a logged-in staff user
                    reason=form.cleaned_data["reason"],
                    replacement=form.cleaned_data["replacement"],
                )
            except Message.DoesNotExist as exc:
                raise Http404("No such message.") from exc
            except CorrectionRejected as exc:
                form.add_error(None, str(exc))
            else:
                self.log_change(request, message, f"Redacted: {correction.reason}")  # the admin's history
                self.message_user(request, f"Message {correction.message_id} redacted.")
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": "Redact message",
            "opts": self.model._meta,
            "message": message,
            "form": form,
        }
        return TemplateResponse(request, "admin/civicdesk_messages/message/redact.html", context)

    def _scoped_message(self, request: HttpRequest, object_id: str) -> Message | None:
        if not str(object_id).isdigit():
            return None
        return self.get_queryset(request).select_related("office").filter(pk=int(object_id)).first()


@admin.register(MessageCorrection)
class MessageCorrectionAdmin(RecordAdmin, OfficeScopedAdmin):
    """Who changed what a message says, when and why. The original text is kept for the office's records;
    only superusers see it here."""

    list_display = ["message", "kind", "by_username", "reason", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["message", "by"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["office", "message", "kind", "by", "by_username", "reason", "replacement", "created_at"]
        return [*fields, "original_body"] if request.user.is_superuser else fields


@admin.register(Media)
class MediaAdmin(OfficeScopedAdmin):
    list_display = ["pk", "message", "index", "content_type", "size", "status"]
    list_filter = ["status"]
    raw_id_fields = ["message"]


@admin.register(StatusCallback)
class StatusCallbackAdmin(RecordAdmin, OfficeScopedAdmin):
    list_display = ["provider_sid", "status", "error_code", "received_at", "applied_at"]
    search_fields = ["provider_sid"]


@admin.register(ConversationEvent)
class ConversationEventAdmin(RecordAdmin, OfficeScopedAdmin):
    list_display = ["conversation", "kind", "actor", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["conversation", "actor"]


@admin.register(BulkAction)
class BulkActionAdmin(RecordAdmin, OfficeScopedAdmin):
    """What a bulk close changed, and whether it was undone: a record, like the events it wrote."""

    list_display = ["action", "actor", "created_at", "undone_at", "undone_by"]
    list_filter = ["action"]
    raw_id_fields = ["actor", "undone_by"]


# --- The staff inbox ---
@admin.register(CannedResponse)
class CannedResponseAdmin(OfficeScopedAdmin):
    """Replies staff insert from the composer. Merge fields: {first_name}, {last_name}, {full_name},
    {official_name}, {official_title}, {official}, {office_name}, {district} (messages.services.canned)."""

    list_display = ["title", "office", "created_at"]
    search_fields = ["title", "body"]
