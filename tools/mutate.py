"""Mutation checks (``make mutate``): break the code the product's promises rest on, and see the tests fail.

Each module in ``MODULES`` is mutated by mutmut and checked with its own tests only (``Module.tests``), so a
module takes minutes, not the whole suite's time per mutant. For each module this script:

1. copies the project's packages, its tests and ``pyproject.toml`` into ``.mutate/<module>/`` (a fresh copy
   every run, so the score is always today's; the working tree is never written to), with a
   ``[tool.mutmut]`` section naming the module and its tests;
2. rewrites the module's ``@transaction.atomic`` functions in that copy as ``name = transaction.atomic(name)``
   after the ``def``: the same object under the same name, but mutmut skips every decorated function, and
   these are the ones that take the row locks (see ``undecorate``);
3. runs ``mutmut run`` there, one mutant at a time, on a test database of its own
   (``TEST_RUN_SUFFIX=_mutate_<module>``), dropped afterwards;
4. writes ``.mutate/<module>/survivors.txt``: the diff of every mutant the tests did not kill.

Then it prints one table: per module the mutants, killed, survived, timeouts, no tests, the score and the run
time. Run it inside the dev stack, which provides ``DATABASE_URL`` and ``REDIS_URL``:

    python -m civicdesk.devstack exec -- python tools/mutate.py [--jobs 2] [MODULE ...]

``make mutate`` does that (``MODULES=signatures keywords`` for a subset). docs/development.md ("Mutation
checks") explains the results.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutate"

# Everything the tests import is copied and importable from the copy; only the module under test is mutated.
PACKAGES = ("civicdesk", "common", "offices", "constituents", "messages", "voice", "demo")
COPIED_FILES = ("pyproject.toml", "manage.py")
# The copy's root conftest: the test database set up once per mutmut process tree (see that file).
CONFTEST = ROOT / "tools" / "mutate_conftest.py"
IGNORED_IN_COPY = shutil.ignore_patterns("__pycache__", "*.pyc", ".data", "mutants")

# Decorators that only wrap the function they decorate, so moving them after the def changes nothing.
# (`functools.cache` is not one: the cached result of the first call would hide every mutant.)
REBINDABLE_DECORATORS = frozenset({"transaction.atomic"})

# How mutmut names a method's mutants: x«separator»Class«separator»method__mutmut_N.
CLASS_SEPARATOR = "\u01c1"
# mutmut's exit-code verdicts, as its `results` command names them.
KILLED, SURVIVED, TIMEOUT, NO_TESTS = "killed", "survived", "timeout", "no tests"


@dataclass(frozen=True, slots=True)
class Module:
    """A module the product's promises rest on, the tests that exercise it, and (if not all) which functions
    to mutate: mutmut's names for them, ``_lock`` or ``Fingerprint.of`` for a method."""

    path: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()

    @property
    def dotted(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")

    def mutant_patterns(self) -> list[str]:
        """Globs of mutmut's mutant names for ``functions`` (none: every function of the module)."""
        patterns = []
        for function in self.functions:
            owner, _, name = function.rpartition(".")
            mangled = f"x{CLASS_SEPARATOR}{owner}{CLASS_SEPARATOR}{name}" if owner else f"x_{name}"
            patterns.append(f"{self.dotted}.{mangled}__mutmut_*")
        return patterns


MODULES: dict[str, Module] = {
    # Longest first, so that two jobs finish together.
    "intake": Module(
        "messages/services/intake.py",
        (
            "tests/messages/test_intake_fast_path.py",
            "tests/messages/twilio/test_sms_webhooks.py",
            "tests/voice/test_caller_consent.py",  # a caller's first text implies consent (intake._receive)
        ),
    ),
    # bulk.py has some 850 mutants at ~1.5 s each; the five actions share `_lock` and one shape, so the lock,
    # the fingerprint check and close/undo (the one action that is undone) stand for them.
    "bulk": Module(
        "messages/services/bulk.py",
        ("tests/messages/inbox/test_bulk_services.py", "tests/messages/inbox/test_bulk_confirm_undo.py"),
        functions=("_lock", "Fingerprint.of", "matching_fingerprint", "bulk_close", "bulk_close_undo"),
    ),
    "delivery": Module(
        "messages/services/delivery.py",
        (
            "tests/messages/test_delivery.py",
            "tests/messages/test_delivery_real_client.py",
            "tests/messages/twilio/test_subaccount_scope.py",
        ),
    ),
    # The drain's own tests (in test_intake_fast_path.py) call inbound_queue and processing directly. The
    # real-worker tests (test_worker_and_sweeper.py) reach the same functions, but a mutant they catch costs
    # their 15 s wait for a text that is never processed, so they are left to `make test`.
    "processing": Module(
        "messages/services/processing.py",
        ("tests/messages/test_processing.py", "tests/messages/test_intake_fast_path.py"),
    ),
    "consent": Module(
        "constituents/services.py",
        (
            "tests/constituents",
            "tests/voice/test_caller_consent.py",
            "tests/messages/test_processing.py",
            "tests/messages/test_intake_fast_path.py",
        ),
    ),
    "signatures": Module(
        "messages/twilio/signatures.py",
        ("tests/messages/twilio/test_signatures.py", "tests/messages/twilio/test_subaccount_scope.py"),
    ),
    "inbound_queue": Module(
        "messages/services/inbound_queue.py", ("tests/messages/test_intake_fast_path.py",)
    ),
    "keywords": Module("messages/keywords.py", ("tests/messages/test_keywords.py",)),
}


@dataclass(frozen=True, slots=True)
class Score:
    module: str
    counts: dict[str, int]
    seconds: float
    error: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, verdict: str) -> int:
        return self.counts.get(verdict, 0)


def undecorate(source: str, decorators: frozenset[str] = REBINDABLE_DECORATORS) -> str:
    """``source`` with each module-level ``@decorator`` in ``decorators`` moved after its function.

    ``@d`` over ``def f`` is ``f = d(f)`` after it (the language defines it so), so the module behaves the
    same; mutmut, which leaves decorated functions alone, then mutates ``f`` and wraps its trampoline in
    ``d``.
    """
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, str, str]] = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef) or len(node.decorator_list) != 1:
            continue
        decorator = node.decorator_list[0]
        text = ast.unparse(decorator)
        if text not in decorators or lines[decorator.lineno - 1].strip() != f"@{text}" or not node.end_lineno:
            continue
        edits.append((decorator.lineno, node.end_lineno, node.name, text))
    for decorator_line, end_line, name, text in reversed(edits):
        lines.insert(end_line, f"{name} = {text}({name})\n")
        del lines[decorator_line - 1]
    return "".join(lines)


def mutmut_config(module: Module) -> str:
    """The ``[tool.mutmut]`` section for one module's run (TOML; JSON lists are valid TOML arrays)."""
    settings = {
        "source_paths": list(PACKAGES),
        "only_mutate": [module.path],
        # One test database per module run, made once and reused by every mutant's pytest session;
        # xdist off: mutmut runs the tests in its own (forked) process. The unraisable-exception plugin's
        # forced garbage collections at the end of every session would cost more than most mutants' tests.
        "pytest_add_cli_args": [
            "--reuse-db",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-p",
            "no:unraisableexception",
        ],
        "pytest_add_cli_args_test_selection": list(module.tests),
        "also_copy": [*COPIED_FILES, "conftest.py"],
        # The copy is a throwaway: no change tracking against git between runs.
        "use_git_change_detection": False,
    }
    body = "\n".join(f"{key} = {json.dumps(value)}" for key, value in settings.items())
    return f"\n\n[tool.mutmut]\n{body}\n"


def prepare(name: str, module: Module) -> Path:
    """A fresh copy of the project for ``name``'s run, with its mutmut configuration."""
    workdir = WORK / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    for package in (*PACKAGES, "tests"):
        shutil.copytree(ROOT / package, workdir / package, ignore=IGNORED_IN_COPY)
    for filename in COPIED_FILES:
        shutil.copy2(ROOT / filename, workdir / filename)
    shutil.copy2(CONFTEST, workdir / "conftest.py")
    target = workdir / module.path
    target.write_text(undecorate(target.read_text()))
    with (workdir / "pyproject.toml").open("a") as pyproject:
        pyproject.write(mutmut_config(module))
    return workdir


def test_database_name(name: str) -> str:
    return f"test_civicdesk_mutate_{name}"


def drop_test_database(name: str) -> None:
    """Drop the module run's test database (it holds only test data), if a run left one."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{test_database_name(name)}" WITH (FORCE)')


def mutmut(workdir: Path, *args: str, log: Path | None = None) -> str:
    """Run the venv's ``mutmut`` in ``workdir``; its output (or a log file's path) comes back."""
    command = [str(Path(sys.executable).parent / "mutmut"), *args]
    env = {**os.environ, "TEST_RUN_SUFFIX": f"_mutate_{workdir.name}"}
    if log is None:
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, check=False)
        return done.stdout
    with log.open("w") as out:
        subprocess.run(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    return str(log)


# Prints the diff of each mutant named in argv, in one process (``mutmut show`` starts one per mutant).
_DIFFS = """
import sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
for key in sys.argv[1:]:
    print(f"# {key}")
    print(get_diff_for_mutant(key, path=find_mutant(key).path))
"""


def diffs(workdir: Path, keys: Sequence[str]) -> str:
    """The diffs of ``keys``: in one process, else (mutmut's internals moved) one ``mutmut show`` each."""
    done = subprocess.run(
        [sys.executable, "-c", _DIFFS, *keys], cwd=workdir, capture_output=True, text=True, check=False
    )
    if done.returncode == 0:
        return done.stdout
    return "".join(mutmut(workdir, "show", key) for key in keys)


def verdicts(workdir: Path) -> dict[str, str]:
    """Each mutant's verdict, from mutmut's ``results --all``."""
    found: dict[str, str] = {}
    for line in mutmut(workdir, "results", "--all", "true").splitlines():
        key, sep, verdict = line.strip().partition(": ")
        if sep:
            found[key] = verdict
    return found


def run_module(name: str) -> Score:
    module = MODULES[name]
    started = time.monotonic()
    scope = f" ({', '.join(module.functions)})" if module.functions else ""
    print(f"[mutate] {name}: mutating {module.path}{scope}, tests {' '.join(module.tests)}", flush=True)
    workdir = prepare(name, module)
    drop_test_database(name)
    try:
        patterns = module.mutant_patterns()
        log = mutmut(workdir, "run", "--max-children", "1", *patterns, log=workdir / "mutmut.log")
        found = verdicts(workdir)
        if patterns:  # the other functions' mutants are left "not checked": not part of this score
            found = {key: v for key, v in found.items() if any(fnmatch(key, p) for p in patterns)}
    finally:
        drop_test_database(name)
    seconds = time.monotonic() - started
    if not found:
        return Score(name, {}, seconds, error=f"no results: see {log}")
    counts: dict[str, int] = {}
    for verdict in found.values():
        counts[verdict] = counts.get(verdict, 0) + 1
    alive = sorted(key for key, verdict in found.items() if verdict != KILLED)
    header = "".join(f"# {key}: {found[key]}\n" for key in alive)
    (workdir / "survivors.txt").write_text(f"{header}\n{diffs(workdir, alive)}")
    print(
        f"[mutate] {name}: {counts.get(KILLED, 0)}/{len(found)} killed in {seconds:.0f} s"
        f" ({len(alive)} not killed: {workdir / 'survivors.txt'})",
        flush=True,
    )
    return Score(name, counts, seconds)


def table(scores: Sequence[Score]) -> str:
    header = ("module", "mutants", "killed", "survived", "timeout", "no tests", "other", "score", "time")
    rows = [header]
    for s in scores:
        if s.error:
            rows.append((s.module, "-", "-", "-", "-", "-", "-", s.error, f"{s.seconds:.0f} s"))
            continue
        known = s.count(KILLED) + s.count(SURVIVED) + s.count(TIMEOUT) + s.count(NO_TESTS)
        score = f"{100 * s.count(KILLED) / s.total:.1f}%" if s.total else "-"
        rows.append(
            (
                s.module,
                str(s.total),
                str(s.count(KILLED)),
                str(s.count(SURVIVED)),
                str(s.count(TIMEOUT)),
                str(s.count(NO_TESTS)),
                str(s.total - known),
                score,
                f"{s.seconds:.0f} s",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"default: all ({', '.join(MODULES)})")
    parser.add_argument("--jobs", type=int, default=1, help="modules run at once (each one mutant at a time)")
    args = parser.parse_args(argv)
    names = args.modules or list(MODULES)
    unknown = [name for name in names if name not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    if "DATABASE_URL" not in os.environ:
        parser.error("run inside the dev stack: python -m civicdesk.devstack exec -- python tools/mutate.py")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        scores = list(pool.map(run_module, names))
    print()
    print(table(scores))
    elapsed = time.monotonic() - started
    print(
        f"\n{len(names)} module(s) in {elapsed:.0f} s; the survivors' diffs: .mutate/<module>/survivors.txt"
    )
    return 1 if any(s.error for s in scores) else 0


if __name__ == "__main__":
    sys.exit(main())
