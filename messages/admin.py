from django.contrib import admin

from messages.models import (
    CannedResponse,
    Conversation,
    ConversationEvent,
    ConversationTag,
    Media,
    Message,
    StatusCallback,
    Tag,
    TriageQueue,
)
from offices.admin import OfficeScopedAdmin, RecordAdmin


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


@admin.register(Message)
class MessageAdmin(RecordAdmin, OfficeScopedAdmin):
    list_display = ["pk", "conversation", "direction", "channel", "status", "provider_sid", "created_at"]
    list_filter = ["direction", "channel", "status"]
    search_fields = ["provider_sid", "from_number", "to_number"]
    raw_id_fields = ["conversation", "sent_by"]


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


# --- The staff inbox ---
@admin.register(CannedResponse)
class CannedResponseAdmin(OfficeScopedAdmin):
    """Replies staff insert from the composer. Merge fields: {first_name}, {last_name}, {full_name},
    {official_name}, {official_title}, {official}, {office_name}, {district} (messages.services.canned)."""

    list_display = ["title", "office", "created_at"]
    search_fields = ["title", "body"]
