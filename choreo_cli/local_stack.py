"""The local stack's processes: PostgreSQL, the Pub/Sub emulator and the GCS emulator.

Each component keeps its data, log and pid under ``STACK_DIR`` and is started only when it is not
already running, so ``up`` is idempotent and ``down`` stops exactly what ``up`` started (it
checks a pid still belongs to the component before signalling it). No shell is involved.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import ConfigurationError
from schemas.settings import StackSettings

STACK_PROJECT_ID = "choreo-local"
# Local-only credentials for a cluster that listens on 127.0.0.1; never used beyond this machine.
PG_USER = PG_PASSWORD = PG_DATABASE = "choreo"  # noqa: S105 - local-only, see above
PG_OS_USER = "postgres"
LOG_TAIL_LINES = 25


class StackError(ConfigurationError):
    """A stack component is missing, cannot start, or its port is taken."""


@dataclass(frozen=True)
class ComponentStatus:
    """What ``status`` reports for one component."""

    name: str
    state: str  # "running", "not answering" or "stopped"
    pid: int | None
    address: str

    @property
    def running(self) -> bool:
        """True when the process is alive and answering on its address."""
        return self.state == "running"


@dataclass(frozen=True)
class StackPaths:
    """Where the stack keeps its files, resolved once so ``up`` and ``down`` agree."""

    root: Path

    @classmethod
    def from_settings(cls, settings: StackSettings) -> StackPaths:
        """Resolve ``STACK_DIR`` to an absolute path."""
        return cls(settings.stack_dir.expanduser().resolve())

    def log(self, name: str) -> Path:
        """The log file of component ``name``."""
        return self.root / "logs" / f"{name}.log"

    def pid(self, name: str) -> Path:
        """The pid file of component ``name``."""
        return self.root / "run" / f"{name}.pid"


def database_url(settings: StackSettings) -> str:
    """The ``DATABASE_URL`` of the stack's PostgreSQL."""
    return f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{settings.pg_port}/{PG_DATABASE}"


def env_lines(settings: StackSettings) -> list[str]:
    """Shell ``export`` lines pointing choreo at the stack, for ``eval "$(choreo stack env)"``."""
    values = {
        "DATABASE_URL": database_url(settings),
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{settings.pubsub_port}",
        "PUBSUB_PROJECT_ID": STACK_PROJECT_ID,
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{settings.gcs_port}",
        # The emulators send no Google-signed tokens, and the stack listens on 127.0.0.1 only:
        # the one place where push authentication is switched off (each service warns).
        "PUSH_AUTH_ENABLED": "false",
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def port_in_use(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_answers(url: str) -> bool:
    """True when ``url`` answers with any HTTP response."""
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - a fixed http://127.0.0.1 URL
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, or a note that it is empty."""
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text) or f"(empty log at {path})"


def process_alive(pid: int, marker: str) -> bool:
    """True when ``pid`` is alive and its command line mentions ``marker`` (so not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user (postgres)
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():
        return sys.platform != "linux"
    try:
        text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return bool(text) and marker in text  # a zombie has an empty command line


def wait_until(
    ready: Callable[[], bool], *, name: str, timeout_s: float, log: Path, alive: Callable[[], bool]
) -> None:
    """Poll ``ready`` until it is true; raise with the log's tail on timeout or early exit."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        if not alive():
            raise StackError(f"{name} exited while starting; last lines of {log}:\n{tail(log)}")
        time.sleep(0.3)
    raise StackError(
        f"{name} did not answer within {timeout_s:.0f} s; last lines of {log}:\n{tail(log)}"
    )


class PostgresServer:
    """A private PostgreSQL cluster under ``STACK_DIR/pg`` on 127.0.0.1:``STACK_PG_PORT``."""

    name = "postgres"
    port_variable = "STACK_PG_PORT"

    def __init__(self, settings: StackSettings, paths: StackPaths) -> None:
        self.port = settings.pg_port
        self.paths = paths
        self.data_dir = paths.root / "pg"
        self.url = database_url(settings)

    @property
    def address(self) -> str:
        """Where it listens."""
        return f"127.0.0.1:{self.port}"

    def bin_dir(self) -> Path | None:
        """The directory holding initdb and pg_ctl: on PATH, else the newest Debian install."""
        on_path = shutil.which("pg_ctl")
        if on_path and shutil.which("initdb"):
            return Path(on_path).parent
        installs = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        return installs[-1].parent if installs else None

    def missing(self) -> list[str]:
        """What must be installed before this component can start."""
        problems = []
        if self.bin_dir() is None:
            problems.append(
                "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under "
                "/usr/lib/postgresql/*/bin: install them with `apt-get install postgresql-15`"
            )
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(PG_OS_USER)
            except KeyError:
                problems.append(
                    f"running as root, PostgreSQL must run as the {PG_OS_USER!r} OS user, which "
                    "does not exist: install the postgresql package or run as a normal user"
                )
            closed = self._closed_ancestor()
            if closed is not None:
                problems.append(
                    f"STACK_DIR={self.paths.root} is out of reach of the {PG_OS_USER!r} OS user "
                    f"({closed} is not searchable by others): `chmod o+x {closed}` or set "
                    "STACK_DIR to another directory"
                )
        return problems

    def _closed_ancestor(self) -> Path | None:
        # Root can create STACK_DIR anywhere, but the postgres user must traverse every parent.
        for directory in [self.data_dir, *self.data_dir.parents]:
            if directory.exists() and not directory.stat().st_mode & stat.S_IXOTH:
                owner = directory.stat().st_uid
                if owner != pwd.getpwnam(PG_OS_USER).pw_uid:
                    return directory
        return None

    def pid(self) -> int | None:
        """The postmaster's pid from ``postmaster.pid``, when that process is alive."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if process_alive(pid, "postgres") else None

    def status(self) -> ComponentStatus:
        """Running when the postmaster is alive and accepts connections."""
        pid = self.pid()
        if pid is None:
            return ComponentStatus(self.name, "stopped", None, self.address)
        state = "running" if self._accepts_connections() else "not answering"
        return ComponentStatus(self.name, state, pid, self.address)

    def start(self, timeout_s: float = 60.0) -> None:
        """Create the cluster on first run, start it and wait for a real connection."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        log = self.paths.log(self.name)
        self._own_by_postgres(log, directory=False)
        self._run_pg(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(log), "-o", f"-p {self.port}",
            "-w", "-t", str(int(timeout_s)), "start",
        )  # fmt: skip
        wait_until(
            self._accepts_connections,
            name=self.name,
            timeout_s=timeout_s,
            log=log,
            alive=lambda: self.pid() is not None,
        )
        self._create_database()

    def stop(self) -> bool:
        """Fast shutdown (rolls back open transactions); False when it was not running."""
        if self.pid() is None:
            return False
        self._run_pg("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        return True

    def _initdb(self) -> None:
        self._own_by_postgres(self.data_dir, directory=True)
        password_file = self.paths.root / "run" / "pg-password"
        self._own_by_postgres(password_file, directory=False)
        password_file.write_text(PG_PASSWORD + "\n")
        try:
            self._run_pg(
                "initdb", "-D", str(self.data_dir), "-U", PG_USER, f"--pwfile={password_file}",
                "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale",
            )  # fmt: skip
        finally:
            password_file.unlink(missing_ok=True)
        # TCP on loopback only, and no Unix socket: the system cluster owns /var/run/postgresql.
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n")

    def _own_by_postgres(self, path: Path, *, directory: bool) -> None:
        if directory:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam(PG_OS_USER)
            os.chown(path, user.pw_uid, user.pw_gid)

    def _run_pg(self, program: str, *args: str) -> None:
        bin_dir = self.bin_dir()
        if bin_dir is None:
            raise StackError("\n".join(self.missing()))
        command = [str(bin_dir / program), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", PG_OS_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
        if done.returncode != 0:
            raise StackError(
                f"{program} failed (exit {done.returncode}): {done.stderr.strip()}\n"
                f"last lines of {self.paths.log(self.name)}:\n{tail(self.paths.log(self.name))}"
            )

    def _conninfo(self, connect_timeout_s: int) -> str:
        return (
            f"host=127.0.0.1 port={self.port} user={PG_USER} password={PG_PASSWORD} "
            f"dbname=postgres connect_timeout={connect_timeout_s}"
        )

    def _accepts_connections(self) -> bool:
        import psycopg  # noqa: PLC0415

        try:
            with psycopg.connect(self._conninfo(2)):
                return True
        except psycopg.OperationalError:
            return False

    def _create_database(self) -> None:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self._conninfo(5), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)
            ).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')


class EmulatorProcess:
    """An emulator run in its own session, so ``stop`` can signal its whole process group."""

    name: str
    marker: str  # a word in the command line that proves a pid is still this emulator
    port_variable: str

    def __init__(self, port: int, paths: StackPaths) -> None:
        self.port = port
        self.paths = paths

    @property
    def address(self) -> str:
        """Where it listens."""
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The argv that starts the emulator."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """The emulator's environment."""
        return dict(os.environ)

    def missing(self) -> list[str]:
        """What must be installed before this component can start."""
        raise NotImplementedError

    def answers(self) -> bool:
        """True when the emulator answers on its port."""
        raise NotImplementedError

    def pid(self) -> int | None:
        """The session leader's pid from the pid file, when that process is still ours."""
        try:
            pid = int(self.paths.pid(self.name).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid, self.marker) else None

    def status(self) -> ComponentStatus:
        """Running when the process is alive and answers."""
        pid = self.pid()
        if pid is None:
            return ComponentStatus(self.name, "stopped", None, self.address)
        return ComponentStatus(
            self.name, "running" if self.answers() else "not answering", pid, self.address
        )

    def start(self, timeout_s: float) -> None:
        """Start the emulator in a new session and wait until it answers."""
        log_path = self.paths.log(self.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.paths.pid(self.name).parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,
                cwd=self.paths.root,
            )
        self.paths.pid(self.name).write_text(f"{process.pid}\n")
        wait_until(
            self.answers,
            name=self.name,
            timeout_s=timeout_s,
            log=log_path,
            alive=lambda: process.poll() is None,
        )

    def stop(self, grace_s: float = 10.0) -> bool:
        """SIGTERM the process group, SIGKILL after ``grace_s``; False when it was not running."""
        pid = self.pid()
        self.paths.pid(self.name).unlink(missing_ok=True)
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _group_alive(pid):
            _signal_group(pid, signal.SIGKILL)
        return True


class PubSubEmulator(EmulatorProcess):
    """The official Pub/Sub emulator (Java), started through gcloud."""

    name = "pubsub"
    port_variable = "STACK_PUBSUB_PORT"
    marker = "pubsub"

    def command(self) -> list[str]:
        """``gcloud beta emulators pubsub start`` on loopback."""
        return [
            shutil.which("gcloud") or "gcloud",
            "beta", "emulators", "pubsub", "start",
            f"--host-port=127.0.0.1:{self.port}",
            f"--data-dir={self.paths.root / 'pubsub'}",
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        """Never let gcloud stop to ask a question."""
        (self.paths.root / "pubsub").mkdir(parents=True, exist_ok=True)
        return {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}

    def missing(self) -> list[str]:
        """java, gcloud and its pubsub-emulator component."""
        problems = []
        if shutil.which("java") is None:
            problems.append(
                "java not found on PATH (the Pub/Sub emulator is a Java program): install it "
                "with `apt-get install default-jre-headless`"
            )
        gcloud = shutil.which("gcloud")
        if gcloud is None:
            problems.append(
                "gcloud not found on PATH: install the Google Cloud CLI "
                "(`apt-get install google-cloud-cli`, see https://cloud.google.com/sdk/docs/install)"
            )
        elif not (Path(gcloud).resolve().parent.parent / "platform" / "pubsub-emulator").is_dir():
            problems.append(
                "the gcloud pubsub-emulator component is not installed: "
                "`apt-get install google-cloud-cli-pubsub-emulator` "
                "(or `gcloud components install pubsub-emulator beta`)"
            )
        return problems

    def answers(self) -> bool:
        """The emulator answers plain HTTP on its port."""
        return http_answers(f"http://127.0.0.1:{self.port}/")


class GcsEmulator(EmulatorProcess):
    """``gcp-storage-emulator`` with its objects on disk under ``STACK_DIR/gcs``."""

    name = "gcs"
    port_variable = "STACK_GCS_PORT"
    marker = "gcp-storage-emulator"

    def executable(self) -> str | None:
        """The console script: on PATH, else next to this interpreter (an unactivated venv)."""
        beside = Path(sys.executable).parent / "gcp-storage-emulator"
        return shutil.which("gcp-storage-emulator") or (str(beside) if beside.exists() else None)

    def command(self) -> list[str]:
        """``gcp-storage-emulator start`` on loopback."""
        executable = self.executable() or "gcp-storage-emulator"
        return [executable, "start", "--host=127.0.0.1", f"--port={self.port}"]

    def environment(self) -> dict[str, str]:
        """Keep the emulator's objects under the stack directory."""
        (self.paths.root / "gcs").mkdir(parents=True, exist_ok=True)
        return {**os.environ, "STORAGE_BASE": str(self.paths.root / "gcs")}

    def missing(self) -> list[str]:
        """The gcp-storage-emulator console script."""
        if self.executable() is None:
            return [
                "gcp-storage-emulator not found on PATH or next to this Python: install it with "
                "`uv pip install gcp-storage-emulator` (it is in choreo's `all` extra)"
            ]
        return []

    def answers(self) -> bool:
        """The JSON API lists buckets."""
        return http_answers(f"http://127.0.0.1:{self.port}/storage/v1/b")


Component = PostgresServer | PubSubEmulator | GcsEmulator


def components(settings: StackSettings) -> list[Component]:
    """The stack's components, in start order."""
    paths = StackPaths.from_settings(settings)
    return [
        PostgresServer(settings, paths),
        PubSubEmulator(settings.pubsub_port, paths),
        GcsEmulator(settings.gcs_port, paths),
    ]


START_TIMEOUT_S = {"postgres": 60.0, "pubsub": 90.0, "gcs": 30.0}


def start_stack(settings: StackSettings, report: Callable[[str], None]) -> list[ComponentStatus]:
    """Start every component that is not running; check all prerequisites before starting any."""
    stack = components(settings)
    to_start = [c for c in stack if c.status().state == "stopped"]
    problems = [problem for c in to_start for problem in c.missing()]
    problems += [
        f"port {c.port} on 127.0.0.1 (for {c.name}) is in use by another process: stop it or "
        f"set {c.port_variable}"
        for c in to_start
        if port_in_use(c.port)
    ]
    if problems:
        raise StackError("cannot start the local stack:\n- " + "\n- ".join(problems))
    for component in stack:
        if component in to_start:
            report(f"{component.name}: starting on {component.address}")
            component.start(START_TIMEOUT_S[component.name])
            report(f"{component.name}: started (pid {component.pid()})")
        else:
            report(f"{component.name}: already running on {component.address}")
    return [c.status() for c in stack]


def stop_stack(settings: StackSettings, report: Callable[[str], None]) -> None:
    """Stop every component the stack started, in reverse order."""
    for component in reversed(components(settings)):
        stopped = component.stop()
        report(f"{component.name}: {'stopped' if stopped else 'was not running'}")


def stack_status(settings: StackSettings) -> list[ComponentStatus]:
    """One status per component."""
    return [c.status() for c in components(settings)]


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)  # reap the leader when this process started it (tests)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
