"""Pluggable backends chosen by a setting, like Django's ``EMAIL_BACKEND``: one loader for all of them."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from django.utils.module_loading import import_string


def backend_load(name: str, *, aliases: Mapping[str, str]) -> Any:
    """The one instance, per process, of the backend class that ``name`` (an alias or a dotted path) names.

    Instances are cached by the dotted path, so a setting changed in a test picks up another instance, and
    switching back returns the first one (a locmem backend keeps what it recorded). The result is ``Any``:
    each caller annotates the protocol its setting promises (``backend: SmsBackend = backend_load(...)``).
    """
    return _instance(aliases.get(name, name))


@functools.cache
def _instance(dotted_path: str) -> Any:
    return import_string(dotted_path)()
