"""civicdesk: hear from constituents, and answer them."""

from civicdesk.celery import app as celery_app

__all__ = ["celery_app"]
