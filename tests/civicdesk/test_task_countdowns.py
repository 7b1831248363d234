"""No task countdown reaches the broker's visibility timeout.

Redis re-delivers a message nobody acknowledged after ``visibility_timeout``; a retry waiting for its ETA is
such a message, so a countdown that long would have the task run twice. Every countdown in the task modules
is a named function of the retry number; this computes each at every retry (0..max_retries) with its jitter
at the top, and reads the modules' source so a countdown that is not one of those functions fails here.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from messages import tasks as messages_tasks
from voice import tasks as voice_tasks

TASK_MODULES = (messages_tasks, voice_tasks)
# Room left under the visibility timeout: a worker busy with other tasks starts an ETA task late.
MARGIN_SECONDS = 600
# Every countdown function, and the task whose retry number it is called with.
COUNTDOWNS: dict[Callable[..., float], Any] = {
    messages_tasks.delivery_retry_countdown: messages_tasks.message_deliver,
    messages_tasks.media_retry_countdown: messages_tasks.media_download,
    voice_tasks.voicemail_download_retry_countdown: voice_tasks.voicemail_audio_download,
    voice_tasks.transcription_retry_countdown: voice_tasks.voicemail_transcribe,
    voice_tasks.recording_delete_retry_countdown: voice_tasks.voicemail_recording_delete,
}
SCHEDULE_KEYWORDS = ("countdown", "eta")
PUBLISHING_CALLS = ("retry", "apply_async", "enqueue", "enqueue_on_commit", "signature", "s")


def _highest(function: Callable[..., float], retries: int) -> float:
    """The countdown at ``retries`` with any jitter at its upper bound."""
    if "spread" in inspect.signature(function).parameters:
        return function(retries, spread=1.0)
    return function(retries)


# The tests' tiny bases, the production defaults, and a base set absurdly high (the cap must hold).
BASES_SECONDS = (0.01, 2.0, 1_000_000.0)


@pytest.mark.parametrize("base", BASES_SECONDS)
def test_no_retry_countdown_reaches_the_broker_visibility_timeout(settings: Any, base: float) -> None:
    settings.DELIVERY_RETRY_BACKOFF_BASE_SECONDS = base
    settings.DOWNLOAD_RETRY_BASE_SECONDS = base
    limit = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] - MARGIN_SECONDS
    for function, task in COUNTDOWNS.items():
        assert task.max_retries is not None, f"{task.name} retries forever"
        for retries in range(task.max_retries + 1):
            countdown = _highest(function, retries)
            assert 0 < countdown < limit, (function.__name__, retries, countdown, limit)


def _calls_with_a_schedule(module: ModuleType) -> list[tuple[str, ast.Call, ast.keyword]]:
    """(enclosing function, call, keyword) for every countdown=/eta= given to a call in ``module``."""
    tree = ast.parse(Path(inspect.getfile(module)).read_text())
    found: list[tuple[str, ast.Call, ast.keyword]] = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Call):
                found.extend(
                    (function.name, node, keyword)
                    for keyword in node.keywords
                    if keyword.arg in SCHEDULE_KEYWORDS
                )
    return found


def _retry_calls(module: ModuleType) -> list[tuple[str, ast.Call]]:
    tree = ast.parse(Path(inspect.getfile(module)).read_text())
    return [
        (function.name, node)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "retry"
    ]


@pytest.mark.parametrize("module", TASK_MODULES, ids=lambda module: module.__name__)
def test_every_countdown_in_the_task_modules_is_a_named_function_of_the_tasks_retry_number(
    module: ModuleType,
) -> None:
    by_name = {function.__name__: (function, task) for function, task in COUNTDOWNS.items()}
    for enclosing, call, keyword in _calls_with_a_schedule(module):
        where = (
            f"{module.__name__}.{enclosing}, line {call.lineno}: {keyword.arg}={ast.unparse(keyword.value)}"
        )
        assert keyword.arg == "countdown", f"{where}: an ETA cannot be checked; give a countdown function"
        value = keyword.value
        assert isinstance(value, ast.Call), f"{where}: not a call of a countdown function"
        assert isinstance(value.func, ast.Name), where
        assert value.func.id in by_name, f"{where}: {value.func.id} is not listed in COUNTDOWNS"
        assert [ast.unparse(arg) for arg in value.args] == ["self.request.retries"], where
        assert value.keywords == [], f"{where}: a countdown function takes only the retry number"
        function, task = by_name[value.func.id]
        assert getattr(module, value.func.id) is function, where
        assert task.name == f"{module.__name__}.{enclosing}", f"{where}: called for another task"


@pytest.mark.parametrize("module", TASK_MODULES, ids=lambda module: module.__name__)
def test_every_retry_in_the_task_modules_gives_a_countdown(module: ModuleType) -> None:
    """Without one Celery waits its default_retry_delay (3 minutes), a countdown nobody chose."""
    retries = _retry_calls(module)
    assert retries, f"{module.__name__} has no self.retry: the scan is broken"
    for enclosing, call in retries:
        keywords = {keyword.arg for keyword in call.keywords}
        assert "countdown" in keywords, f"{module.__name__}.{enclosing}, line {call.lineno}: no countdown"


def test_every_countdown_function_is_used_by_its_task() -> None:
    """A listed function that no task calls would be checked for nothing."""
    used = {
        (module.__name__, enclosing, ast.unparse(keyword.value.func))
        for module in TASK_MODULES
        for enclosing, _call, keyword in _calls_with_a_schedule(module)
        if isinstance(keyword.value, ast.Call)
    }
    for function, task in COUNTDOWNS.items():
        module, _, task_function = task.name.rpartition(".")
        assert (module, task_function, function.__name__) in used, (function.__name__, task.name)
