"""Servers a fault-injection test starts and kills itself: its own redis-server, its own Postgres
cluster and a gunicorn running this project, each on a free port of 127.0.0.1.

The shared Redis and Postgres other test sessions use are never touched: a test that kills a
dependency kills one of these.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, what: str, *, timeout: float = 30.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    detail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} did not come up in {timeout:.0f} s\n{detail}")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _kill(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class RedisServer:
    """A redis-server of our own; ``kill()`` is kill -9, ``start()`` again reuses port and dir."""

    directory: Path
    port: int = field(default_factory=free_port)
    appendonly: bool = False
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            import pytest

            pytest.skip("redis-server is not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "redis.log"
        cmd = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--logfile",
            str(log),
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait(lambda: _port_open(self.port), "redis-server", log=log)
        return self

    def kill(self) -> None:
        _kill(self.proc)
        self.proc = None


@dataclass
class PostgresServer:
    """A throw-away Postgres cluster (initdb in a temporary directory of its own)."""

    port: int = field(default_factory=free_port)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="stepwise-pg-")))
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresServer:
        initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
        if initdb is None or postgres is None:
            import pytest

            pytest.skip("Postgres binaries (initdb, postgres) are not installed")
        data = self.directory / "data"
        log = self.directory / "postgres.log"
        user = _unprivileged_user()  # Postgres refuses to run as root
        if not data.exists():
            if user is not None:
                shutil.chown(self.directory, user=user)
            _run_as(user, [initdb, "-D", str(data), "-U", "postgres", "-A", "trust"])
        cmd = [
            postgres,
            "-D",
            str(data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.directory}",
            "-c",
            "fsync=off",
        ]
        with open(log, "a") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, **_as_user(user)
            )
        _wait(lambda: _port_open(self.port), "postgres", log=log)
        return self

    def kill(self) -> None:
        _kill(self.proc)
        self.proc = None

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def _unprivileged_user() -> str | None:
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    return None


def _as_user(user: str | None) -> dict:
    if user is None:
        return {}
    import pwd

    record = pwd.getpwnam(user)
    return {"user": record.pw_uid, "group": record.pw_gid, "extra_groups": []}


def _run_as(user: str | None, cmd: list[str]) -> None:
    subprocess.run(
        cmd,
        check=True,
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        **_as_user(user),
    )


@dataclass
class WebServer:
    """gunicorn serving this project with the given environment (one worker, two threads)."""

    env: dict[str, str]
    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "web.log"

    def start(self) -> WebServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "1",
            "--threads",
            "2",
            "--timeout",
            "60",
        ]
        env = {**os.environ, "DJANGO_DEBUG": "0", "DATABASE_CONN_MAX_AGE": "0", **self.env}
        with open(self.log_path, "a") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        _wait(lambda: _port_open(self.port), "gunicorn", timeout=60, log=self.log_path)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _kill(self.proc)
        self.proc = None

    def request(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.base + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


@dataclass
class CeleryWorker:
    """A `celery worker` of this project (queues default and gpu) with the given environment."""

    env: dict[str, str]
    directory: Path
    proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "worker.log"

    def start(self) -> CeleryWorker:
        self.directory.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "default,gpu",
            "--concurrency",
            "1",
            "--pool",
            "solo",
            "-n",
            f"faults-{os.getpid()}-{free_port()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ]
        env = {**os.environ, "DATABASE_CONN_MAX_AGE": "0", **self.env}
        with open(self.log_path, "a") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        _wait(
            lambda: "ready." in self.log_path.read_text() or self.proc.poll() is not None,
            "celery worker",
            timeout=90,
            log=self.log_path,
        )
        if self.proc.poll() is not None:
            raise RuntimeError(f"celery worker exited:\n{self.log_path.read_text()[-3000:]}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _kill(self.proc)
        self.proc = None


def django_process(env: dict[str, str], code: str, **kwargs) -> subprocess.Popen:
    """Run `code` in a new Python process with Django set up (as beat or a shell would)."""
    prelude = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup()\n"
    return subprocess.Popen(
        [sys.executable, "-c", prelude + code],
        cwd=ROOT,
        env={**os.environ, "DATABASE_CONN_MAX_AGE": "0", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )
