"""What the inbox shows that apps above the messages app own: thread bodies of their channels, bulk actions.

How the conversation thread renders a message of a channel the messages app does not own.

Calls and voicemails are ``Message`` rows in the caller's thread, but their bodies (the recording, the
transcript, who answered) belong to the voice app, which sits above this one. Rather than name its templates
here, the voice app registers them at start-up (its ``AppConfig.ready``); a channel with no template
registered renders as a text message.
"""

from __future__ import annotations

_channel_templates: dict[str, str] = {}


def channel_template_register(*, channel: str, template: str) -> None:
    """Render the thread's ``channel`` messages with ``template`` (context: m, office, constituent)."""
    _channel_templates[channel] = template


def channel_template(channel: str) -> str | None:
    """The template registered for ``channel``, or None for a text message."""
    return _channel_templates.get(channel)


# --- Inbox bulk actions owned by apps above this one ----------------------------------------------------
# The bulk bar's form posts the selection (``ids``) or the filter (``f_<param>`` with ``scope=matching``); an
# action of another app (e.g. "Reply with a form letter") is a submit button whose ``formaction`` is that
# app's URL, registered at start-up like the channel templates above.
_bulk_actions: list[tuple[str, str, str]] = []


def inbox_bulk_action_register(*, label: str, url_name: str, element_id: str) -> None:
    """Offer ``label`` in the inbox's bulk bar; it posts the selection to ``url_name`` (takes office_slug)."""
    if all(existing[1] != url_name for existing in _bulk_actions):
        _bulk_actions.append((label, url_name, element_id))


def inbox_bulk_actions() -> list[tuple[str, str, str]]:
    """(label, URL name, element id) of every registered bulk action, in registration order."""
    return list(_bulk_actions)
