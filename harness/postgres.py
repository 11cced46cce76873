"""A throwaway PostgreSQL cluster on loopback: initdb in a temp dir, the real server, run as an unprivileged user."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import asyncpg

from harness.backends import free_port
from harness.polling import wait_for

__all__ = ["PostgresCluster", "hold_table_lock", "run_sql"]

# initdb and postgres refuse to run as root; as root (CI) the cluster runs as this user instead.
UNPRIVILEGED_USER = "nobody"
SUPERUSER = "svc"


def run_sql(dsn: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE DATABASE cannot run inside one)."""

    async def go() -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(go())


@contextlib.contextmanager
def hold_table_lock(dsn: str, table: str = "links") -> Iterator[None]:
    """Another client holding ACCESS EXCLUSIVE on table until the block ends: every query on it waits."""
    locked = threading.Event()
    release = threading.Event()
    failed: list[BaseException] = []

    async def hold() -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            async with conn.transaction():
                await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                locked.set()
                await asyncio.to_thread(release.wait, 60)
        finally:
            await conn.close()

    def run() -> None:
        try:
            asyncio.run(hold())
        except BaseException as exc:
            failed.append(exc)
            locked.set()

    holder = threading.Thread(target=run, name="pg-lock", daemon=True)
    holder.start()
    try:
        assert locked.wait(10), "the lock was not taken within 10 s"
        assert not failed, failed
        yield
    finally:
        release.set()
        holder.join(15)


class PostgresCluster:
    """One `postgres` server over its own data directory, listening on 127.0.0.1 only (no Unix socket); as a
    context manager, closed (stopped, files deleted) on the way out."""

    def __init__(self, postgres_bin: str, *, fsync: bool = True, cpus: Sequence[int] = ()) -> None:
        self._bin = Path(postgres_bin).parent
        self._fsync = fsync
        # Pinned to these CPUs when given (the benchmark keeps its server core for the variant alone).
        self._taskset = ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []
        # Not under pytest's tmp_path: that is mode 0700 and root's, so the unprivileged user could not enter it.
        self.root = Path(tempfile.mkdtemp(prefix="svc-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
        self._initdb()

    def _initdb(self) -> None:
        subprocess.run(
            [
                *self._as_user,
                str(self._bin / "initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-instructions",
                *([] if self._fsync else ["--no-sync"]),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def url(self, database: str = "postgres") -> str:
        """A postgresql:// URL for one database of this cluster."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, *, wait: bool = True) -> None:
        """Start the server (same port, same data); with wait, until it accepts queries."""
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
            "fsync": "on" if self._fsync else "off",
            "shared_buffers": "16MB",
            "max_connections": "60",
        }
        args = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    *self._taskset,
                    *self._as_user,
                    str(self._bin / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    *args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll until the server answers SELECT 1."""

        def answers() -> bool:
            if not self.running:
                raise AssertionError(f"postgres exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                run_sql(self.url(), "SELECT 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                return False
            return True

        wait_for(answers, timeout, what="postgres accepting connections")

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open sessions are ended, committed data stays."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            self._process.wait(timeout=30)
        self._process = None

    def signal_all(self, signum: int) -> None:
        """Send signum to the postmaster and every backend (each backend is its own session: no killpg)."""
        if not self.running or self._process is None:
            return
        postmaster = self._process.pid
        targets = [postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
                ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == postmaster:
                targets.append(int(stat.parent.name))
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def kill(self) -> None:
        """SIGKILL the postmaster and all its backends at once: the server dies mid-whatever, as in a crash."""
        if self._process is None:
            return
        self.signal_all(signal.SIGKILL)
        self._process.wait(timeout=30)
        self._process = None

    def create_database(self, name: str) -> str:
        """A fresh, empty database; its URL."""
        run_sql(self.url(), f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server (thawing it first, in case a test froze it) and delete its files."""
        self.signal_all(signal.SIGCONT)
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
