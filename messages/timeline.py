"""How the conversation thread renders a message of a channel the messages app does not own.

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
