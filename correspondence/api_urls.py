"""``/api/v1/offices/<slug>/``: form letters and bulk replies (namespace ``correspondence-api``)."""

from django.urls import path

from correspondence import api

app_name = "correspondence-api"

urlpatterns = [
    path("letters/", api.LetterListApi.as_view(), name="letter-list"),
    path("letters/<int:pk>/", api.LetterDetailApi.as_view(), name="letter-detail"),
    path("letters/<int:pk>/approve/", api.LetterApproveApi.as_view(), name="letter-approve"),
    path("bulk-replies/", api.BulkReplyListApi.as_view(), name="bulk-reply-list"),
    path("bulk-replies/<int:pk>/", api.BulkReplyDetailApi.as_view(), name="bulk-reply-detail"),
    path("bulk-replies/<int:pk>/start/", api.BulkReplyStartApi.as_view(), name="bulk-reply-start"),
    path("bulk-replies/<int:pk>/pause/", api.BulkReplyPauseApi.as_view(), name="bulk-reply-pause"),
    path("bulk-replies/<int:pk>/resume/", api.BulkReplyResumeApi.as_view(), name="bulk-reply-resume"),
    path("bulk-replies/<int:pk>/cancel/", api.BulkReplyCancelApi.as_view(), name="bulk-reply-cancel"),
]
