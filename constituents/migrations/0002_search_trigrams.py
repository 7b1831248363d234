# Written by hand: SQL functions and expression indexes for substring search of names and phone numbers,
# with no model state (docs/architecture.md, "Search"; constituents/search.py compiles to these expressions).
#
# Stock PostgreSQL only: the embedded server (pgserver) has no pg_trgm, so the trigrams come from two small
# PL/pgSQL functions and are indexed with GIN's built-in array operator class. Each index's expression is
# exactly what constituents.search.NameTrigrams / Trigrams compile to, which is what lets PostgreSQL use it.
# The indexes are built CONCURRENTLY (hence atomic = False), so SMS intake can keep adding constituents while
# they build.

from django.db import migrations

TRIGRAMS_FUNCTION = """
CREATE OR REPLACE FUNCTION constituents_trigrams(value text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    s text := lower(coalesce(value, ''));
    result text[] := '{}';
BEGIN
    -- Every three-character substring of the lowercased value ('Rivera' -> riv, ive, ver, era).
    FOR i IN 1 .. char_length(s) - 2 LOOP
        result := result || substr(s, i, 3);
    END LOOP;
    RETURN result;
END
$$
"""

NAME_TRIGRAMS_FUNCTION = """
CREATE OR REPLACE FUNCTION constituents_name_trigrams(first_name text, last_name text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    -- Each name on its own: a search word has no space, so trigrams across the two are never asked for.
    RETURN constituents_trigrams(first_name) || constituents_trigrams(last_name);
END
$$
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("constituents", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql=TRIGRAMS_FUNCTION, reverse_sql="DROP FUNCTION IF EXISTS constituents_trigrams(text)"
        ),
        migrations.RunSQL(
            sql=NAME_TRIGRAMS_FUNCTION,
            reverse_sql="DROP FUNCTION IF EXISTS constituents_name_trigrams(text, text)",
        ),
        migrations.RunSQL(
            sql=(
                'CREATE INDEX CONCURRENTLY IF NOT EXISTS "constituent_name_trigrams" '
                'ON "constituents_constituent" '
                'USING gin (constituents_name_trigrams("first_name", "last_name"))'
            ),
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "constituent_name_trigrams"',
        ),
        migrations.RunSQL(
            sql=(
                'CREATE INDEX CONCURRENTLY IF NOT EXISTS "constituent_phone_trigrams" '
                'ON "constituents_constituent" USING gin (constituents_trigrams("phone"))'
            ),
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "constituent_phone_trigrams"',
        ),
    ]
