from django.urls import path

from messages.views import bulk, conversation, inbox, simulator

app_name = "messages"

urlpatterns = [
    path("", inbox.inbox, name="inbox"),
    path("updates/", inbox.inbox_updates, name="inbox-updates"),
    path("count/", inbox.inbox_count, name="inbox-count"),
    path("bulk/", bulk.bulk_action, name="bulk"),
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
    path("simulator/", simulator.phone_simulator, name="simulator"),
]

# The voice hotline (messages.views.voice).
from messages.views import voice  # noqa: E402

urlpatterns += [
    path("voice/voicemails/<int:pk>/audio/", voice.voicemail_audio, name="voicemail-audio"),
    path("voice/call-in/", voice.call_in_list, name="call-in-list"),
    path("voice/call-in/<int:pk>/", voice.call_in_detail, name="call-in-detail"),
    path("voice/call-in/<int:pk>/tally.json", voice.call_in_tally, name="call-in-tally"),
    path("voice/call-in/<int:pk>/switch/", voice.call_in_switch, name="call-in-switch"),
    path("voice/simulator/", voice.call_simulator, name="voice-simulator"),
]
