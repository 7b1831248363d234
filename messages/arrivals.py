"""What other apps do with each message a constituent sends, once it is stored and readable.

A text is announced when its processing (keywords, consent) has committed; a voicemail when its transcript
is in. Apps above this one (campaign grouping, routing rules) register a hook in their ``AppConfig.ready``;
this app never imports them. A hook gets the message id, on commit, and must be cheap: it enqueues its own
task, and that task must be idempotent, since an announcement can repeat (a transcript corrected) and a
process can die between the commit and the hook, which the hook's own periodic pass has to catch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

logger = logging.getLogger(__name__)

_hooks: dict[str, Callable[[int], None]] = {}


def arrival_hook_register(name: str, hook: Callable[[int], None]) -> None:
    """Call ``hook(message_id)`` for each announced message. Registering a name again replaces its hook."""
    _hooks[name] = hook


def arrival_hooks() -> dict[str, Callable[[int], None]]:
    return dict(_hooks)


def message_arrived_on_commit(message_id: int) -> None:
    """Announce a constituent's message to the registered hooks once the current transaction commits.

    A failing hook is logged and does not stop the others (nor undo the commit)."""

    def announce() -> None:
        for name, hook in list(_hooks.items()):
            try:
                hook(message_id)
            except Exception:
                logger.exception("arrival hook %s failed for message %s", name, message_id)

    transaction.on_commit(announce, robust=False)
