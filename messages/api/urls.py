from django.urls import path

from messages.api import views

app_name = "messages-api"

urlpatterns = [
    path("conversations/", views.ConversationListApi.as_view(), name="conversation-list"),
]
