"""The servers chatbench starts: N processes of daphne, uvicorn or granian on
free ports, each pinned to a core; and what it records of the machine."""

import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import CommandError

from chat.management.bench.core import open_files_max
from chat.ready import ready_wait

# The servers chatbench can start: the app under daphne, uvicorn or granian,
# or the Channels tutorial's chat under daphne (bench/tutorial.py), the
# baseline; graphql is the app under daphne, driven by GraphQL clients.
KINDS = ("daphne", "uvicorn", "granian", "tutorial", "graphql")


class Servers:
    """N server processes of a kind (KINDS) on free ports, each pinned to a core."""

    def __init__(self, *, count: int, kind: str, env: dict[str, str], cores: list[set[int]]):
        self.count, self.kind, self.env, self.cores = count, kind, env, cores
        self.procs: list[subprocess.Popen] = []
        self.ports: list[int] = []
        self.log = open(Path(env["BENCH_LOG_DIR"]) / "servers.log", "ab")

    def command(self, port: int) -> list[str]:
        if self.kind == "granian":
            return [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--loop",
                "asyncio",
                "--no-access-log",
                "--log-level",
                "warning",
                "chatsite.asgi:application",
            ]
        if self.kind == "uvicorn":
            return [
                sys.executable,
                "-m",
                "uvicorn",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws",
                "websockets",
                "--ws-max-size",
                "65536",
                "--no-access-log",
                "--log-level",
                "warning",
                "chatsite.asgi:application",
            ]
        return [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "--websocket-max-message-size",
            "65536",
            "--websocket-max-frame-size",
            "65536",
            "-v",
            "0",
            "chat.management.bench.tutorial:application"
            if self.kind == "tutorial"
            else "chatsite.asgi:application",
        ]

    def start(self) -> "Servers":
        for i in range(self.count):
            port = free_port()
            cores = self.cores[i] if self.cores else None

            def prepare(cores: set[int] | None = cores) -> None:
                open_files_max()
                if cores:  # before exec: a server's worker processes inherit it
                    os.sched_setaffinity(0, cores)

            proc = subprocess.Popen(
                self.command(port),
                env=self.env,
                stdout=self.log,
                stderr=self.log,
                preexec_fn=prepare,
                cwd=settings.BASE_DIR,
            )
            self.procs.append(proc)
            self.ports.append(port)
        for proc, port in zip(self.procs, self.ports, strict=True):
            wait_healthy(proc, port)
        return self

    @property
    def pids(self) -> list[int]:
        """The processes that serve: each server's, or its workers' (granian)."""
        pids = []
        for proc in self.procs:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            pids += [int(c) for c in children] if self.kind == "granian" else [proc.pid]
        return pids

    @property
    def urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{port}/ws/chat/" for port in self.ports]

    def profile(self, folder: str | None, label: str) -> list[subprocess.Popen]:
        """With a `folder`, start py-spy (installed apart) on each server:
        collapsed stacks, one line per stack and its samples, written to
        <folder>/<label>-<n>.txt once it gets SIGINT."""
        if not folder:
            return []
        Path(folder).mkdir(parents=True, exist_ok=True)
        command = ["py-spy", "record", "--format", "raw", "--rate", "250", "--nonblocking"]
        return [
            subprocess.Popen(
                [
                    *command,
                    "--subprocesses",
                    "--pid",
                    str(proc.pid),
                    "-o",
                    f"{folder}/{label}-{i}.txt",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i, proc in enumerate(self.procs)
        ]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs, self.ports = [], []
        self.log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(proc: subprocess.Popen, port: int) -> None:
    url = f"http://127.0.0.1:{port}/healthz"
    if not ready_wait(url, alive=lambda: proc.poll() is None, seconds=30):
        if proc.poll() is not None:
            raise CommandError(f"a server exited with {proc.returncode}: see servers.log")
        raise CommandError("a server did not answer /healthz within 30 s")


def database_create(url: str) -> None:
    """Create a PostgreSQL database named by the URL if it does not exist."""
    import psycopg

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def machine() -> dict:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
