"""The voice hotline's pages, under ``/o/<office_slug>/voice/`` (namespace ``voice``)."""

from django.urls import path

from voice import views

app_name = "voice"

urlpatterns = [
    path("voicemails/<int:pk>/audio/", views.voicemail_audio, name="voicemail-audio"),
    path("call-in/", views.call_in_list, name="call-in-list"),
    path("call-in/<int:pk>/", views.call_in_detail, name="call-in-detail"),
    path("call-in/<int:pk>/tally.json", views.call_in_tally, name="call-in-tally"),
    path("call-in/<int:pk>/switch/", views.call_in_switch, name="call-in-switch"),
]
