"""The Go anchor: bench/go (stdlib net/http + slog, the same SQLite query) built into a binary."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["GO_SOURCE", "build_go"]

GO_SOURCE = Path(__file__).resolve().parent.parent / "bench" / "go"


def build_go(out_dir: Path) -> Path | None:
    """`go build` GO_SOURCE into out_dir/linkserver; None (the Go anchor skipped) when Go is not installed."""
    go = shutil.which("go")
    if go is None:
        return None
    binary = out_dir / "linkserver"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=GO_SOURCE, check=True, timeout=600)
    return binary
