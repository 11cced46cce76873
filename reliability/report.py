"""Where the reliability runs' committed reports live."""

from __future__ import annotations

from pathlib import Path

__all__ = ["RESULTS_DIR"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
