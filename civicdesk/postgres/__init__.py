"""Django's PostgreSQL backend, with a deadline a request can put on every wait for the server."""
