"""Twilio's webhooks, under ``/webhooks/twilio/`` (namespace ``twilio``; docs/twilio-setup.md).

One namespace for both products: the URLs are what each office configures on its Twilio numbers, and the
TwiML we return names them (``twilio:voice-menu`` and so on).
"""

from django.urls import path

from messages import webhooks as sms
from voice import webhooks as voice

app_name = "twilio"

urlpatterns = [
    path("sms/", sms.sms_received, name="sms-received"),
    path("sms/status/", sms.sms_status, name="sms-status"),
    path("voice/", voice.call_received, name="voice-received"),
    path("voice/menu/", voice.menu_selected, name="voice-menu"),
    path("voice/dial/", voice.dial_completed, name="voice-dial"),
    path("voice/dial/answered/", voice.staff_answered, name="voice-staff-answered"),
    path("voice/record/", voice.voicemail_recorded, name="voice-record"),
    path("voice/recording/", voice.recording_completed, name="voice-recording"),
    path("voice/transcription/", voice.transcription_received, name="voice-transcription"),
    path("voice/status/", voice.call_status_changed, name="voice-status"),
    path("voice/audio/<str:token>/", voice.greeting_audio, name="voice-audio"),
]
