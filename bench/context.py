"""What the runs of one benchmark share (database, receivers, Go binary, PostgreSQL); a run's server start and stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.launch import launch_for
from bench.postgres import postgres_for
from bench.process import Server
from bench.receivers import Backends, running_backends
from bench.settings import Settings
from bench.variants import Runs, variant_of
from harness.gobuild import build_go
from harness.seed import SLUG, seed_database

__all__ = ["Context", "open_context"]


@dataclass
class Context:
    """Shared by every run of one benchmark."""

    settings: Settings
    workdir: Path
    db: Path
    backends: Backends
    go_binary: Path | None
    postgres_url: str | None = None  # the seeded database of the -pg variants

    def start(self, key: str, tag: str, extra_env: dict[str, str] | None = None) -> tuple[Server, float]:
        """Start variant key on the server core and wait for its first 200: (server, seconds to ready)."""
        s = self.settings
        launch = launch_for(
            variant_of(key),
            self.db,
            self.backends,
            go_binary=self.go_binary,
            baseline=s.baseline,
            postgres_url=self.postgres_url,
        )
        for name, value in (extra_env or {}).items():
            # PYTHONPATH may already name the baseline tree: both stay on it.
            old = launch.env.get(name) if name == "PYTHONPATH" else None
            launch.env[name] = f"{value}{os.pathsep}{old}" if old else value
        server = Server(launch, s.server_cpu, self.workdir / f"{key}-{tag}.log")
        try:
            startup = server.wait_ready(s.path)
        except Exception:
            server.stop()
            raise
        return server, startup

    def finish(self, server: Server) -> tuple[float, bool]:
        """Stop the server (its log kept only with keep_logs): (seconds to exit, whether it had to be killed)."""
        stopped = server.stop()
        if not self.settings.keep_logs:
            server.log_path.unlink(missing_ok=True)
        return stopped


@contextlib.contextmanager
def open_context(settings: Settings, keys: Sequence[str]) -> Iterator[Context]:
    """Everything the variants keys need, for the block: a temp dir, the seeded database, the receivers..."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: install it with `sudo apt-get install -y wrk`")
    if shutil.which("taskset") is None:
        raise SystemExit("taskset not found: install util-linux")
    variants = [variant_of(k) for k in keys]
    with tempfile.TemporaryDirectory(prefix="svc-bench-") as tmp:
        workdir = Path(tmp)
        db = workdir / "bench.db"
        seed_database(db)
        go_binary = build_go(workdir) if any(v.runs is Runs.GO for v in variants) else None
        postgres = postgres_for(any(v.postgres for v in variants), SLUG, settings.load_cpus)
        with running_backends(settings.load_cpus) as backends, postgres as url:
            yield Context(settings, workdir, db, backends, go_binary, url)
