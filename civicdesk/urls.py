from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from civicdesk import health, views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The one-time link of an invitation (offices.services.membership_invite): choose a password, then log in.
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"
    ),
    path("admin/", admin.site.urls),
    path("webhooks/twilio/", include("civicdesk.webhook_urls")),
    path("o/<slug:office_slug>/", include("messages.urls")),
    path("o/<slug:office_slug>/voice/", include("voice.urls")),
    path("o/<slug:office_slug>/", include("demo.urls")),
    path("o/<slug:office_slug>/", include("correspondence.urls")),
    path("api/v1/offices/<slug:office_slug>/", include("messages.api.urls")),
    path("api/v1/offices/<slug:office_slug>/", include("correspondence.api_urls")),
]
