"""The app's PostgreSQL connections run without parallel query workers (docs/deployment.md, "PostgreSQL")."""

from __future__ import annotations

import pytest
from django.db import connection

from civicdesk.settings.base import database_settings


def test_database_settings_turn_parallel_query_workers_off():
    config = database_settings("postgresql://app@db.example:5432/civicdesk")
    assert config["OPTIONS"]["options"] == "-c max_parallel_workers_per_gather=0"


def test_options_given_in_the_url_are_kept_and_win():
    config = database_settings(
        "postgresql://app@db.example:5432/civicdesk"
        "?options=-c%20statement_timeout%3D5000%20-c%20max_parallel_workers_per_gather%3D2&sslmode=require"
    )
    assert config["OPTIONS"]["options"] == (
        "-c max_parallel_workers_per_gather=0 -c statement_timeout=5000 -c max_parallel_workers_per_gather=2"
    )
    assert config["OPTIONS"]["sslmode"] == "require"


@pytest.mark.django_db
def test_the_apps_connection_has_parallel_query_workers_off():
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] == "0"
