from django.urls import path

from messages.views import inbox

app_name = "messages"

urlpatterns = [
    path("", inbox.inbox, name="inbox"),
    path("conversations/<int:pk>/", inbox.conversation_detail, name="conversation"),
    path("conversations/<int:pk>/reply/", inbox.conversation_reply, name="conversation-reply"),
    path("media/<int:pk>/", inbox.media_file, name="media"),
]
