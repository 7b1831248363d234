"""Reading a row id from text a client sent (a URL parameter, a callback's query string, a form)."""

from __future__ import annotations

# Every number of up to 18 digits fits a PostgreSQL bigint, the type of the primary keys; a longer one
# could not name a row and would fail in the database, so it is read as no id at all.
MAX_ID_DIGITS = 18
