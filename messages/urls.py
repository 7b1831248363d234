"""The inbox's pages, under ``/o/<office_slug>/`` (namespace ``messages``)."""

from django.urls import path

from messages.views import bulk, conversation, inbox

app_name = "messages"

urlpatterns = [
    path("", inbox.inbox, name="inbox"),
    path("updates/", inbox.inbox_updates, name="inbox-updates"),
    path("count/", inbox.inbox_count, name="inbox-count"),
    path("bulk/", bulk.bulk_action, name="bulk"),
    path("bulk/<int:pk>/undo/", bulk.bulk_undo, name="bulk-undo"),
    path("conversations/<int:pk>/", conversation.conversation_detail, name="conversation"),
    path("conversations/<int:pk>/reply/", conversation.conversation_reply, name="conversation-reply"),
    path("conversations/<int:pk>/triage/", conversation.conversation_triage, name="conversation-triage"),
    path(
        "conversations/<int:pk>/timeline/", conversation.conversation_timeline, name="conversation-timeline"
    ),
    path(
        "conversations/<int:pk>/presence/", conversation.conversation_presence, name="conversation-presence"
    ),
    path("conversations/<int:pk>/constituent/", conversation.constituent_update, name="constituent-update"),
    path("media/<int:pk>/", inbox.media_file, name="media"),
]
