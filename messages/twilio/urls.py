from django.urls import path

from messages.twilio import views

app_name = "twilio"

urlpatterns = [
    path("sms/", views.sms_received, name="sms-received"),
    path("sms/status/", views.sms_status, name="sms-status"),
]
