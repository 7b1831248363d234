from django.urls import path

from messages.twilio import views

app_name = "twilio"

urlpatterns = [
    path("sms/", views.sms_received, name="sms-received"),
    path("sms/status/", views.sms_status, name="sms-status"),
]

# The voice hotline (messages.twilio.voice_views; docs/twilio-setup.md).
from messages.twilio import voice_views  # noqa: E402

urlpatterns += [
    path("voice/", voice_views.call_received, name="voice-received"),
    path("voice/menu/", voice_views.menu_selected, name="voice-menu"),
    path("voice/dial/", voice_views.dial_completed, name="voice-dial"),
    path("voice/dial/answered/", voice_views.staff_answered, name="voice-staff-answered"),
    path("voice/record/", voice_views.voicemail_recorded, name="voice-record"),
    path("voice/recording/", voice_views.recording_completed, name="voice-recording"),
    path("voice/transcription/", voice_views.transcription_received, name="voice-transcription"),
    path("voice/status/", voice_views.call_status_changed, name="voice-status"),
    path("voice/audio/<str:token>/", voice_views.greeting_audio, name="voice-audio"),
]
