"""Form letters and bulk replies, under ``/o/<office_slug>/`` (namespace ``correspondence``)."""

from django.urls import path

from correspondence import views

app_name = "correspondence"

urlpatterns = [
    path("letters/", views.letter_list, name="letters"),
    path("letters/new/", views.letter_new, name="letter-new"),
    path("letters/<int:pk>/", views.letter_detail, name="letter"),
    path("letters/<int:pk>/approve/", views.letter_approve, name="letter-approve"),
    path("letters/<int:pk>/request-approval/", views.letter_request_approval, name="letter-request-approval"),
    path("letters/<int:pk>/retire/", views.letter_retire, name="letter-retire"),
    path("bulk-replies/", views.bulk_reply_list, name="bulk-replies"),
    path("bulk-replies/new/", views.bulk_reply_new, name="bulk-reply-new"),
    path("bulk-replies/<int:pk>/", views.bulk_reply_detail, name="bulk-reply"),
    path("bulk-replies/<int:pk>/progress/", views.bulk_reply_progress, name="bulk-reply-progress"),
    path("bulk-replies/<int:pk>/start/", views.bulk_reply_start, name="bulk-reply-start"),
    path("bulk-replies/<int:pk>/pause/", views.bulk_reply_pause, name="bulk-reply-pause"),
    path("bulk-replies/<int:pk>/resume/", views.bulk_reply_resume, name="bulk-reply-resume"),
    path("bulk-replies/<int:pk>/cancel/", views.bulk_reply_cancel, name="bulk-reply-cancel"),
    path("bulk-replies/<int:pk>/report/", views.bulk_reply_report, name="bulk-reply-report"),
    path("bulk-replies/<int:pk>/report.csv", views.bulk_reply_report_csv, name="bulk-reply-report-csv"),
]
