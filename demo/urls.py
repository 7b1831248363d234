"""The demo's simulator pages, under ``/o/<office_slug>/`` (namespace ``demo``; 404 unless DEMO_MODE)."""

from django.urls import path

from demo import views

app_name = "demo"

urlpatterns = [
    path("simulator/", views.sms_simulator, name="sms-simulator"),
    path("voice/simulator/", views.call_simulator, name="call-simulator"),
]
