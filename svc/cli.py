"""The command line's light half: --help, --version, bad arguments and config errors, answered without the server."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Literal

from svc.buildinfo import BuildInfo, read_build_info
from svc.config import Config, ConfigError, Getenv, help_table

__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "EXIT_OK", "USAGE", "Command", "answer", "main", "version_line"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2

USAGE = """usage: svc [--help | --version | openapi]

Serves the svc API on HOST:PORT and metrics on ADMIN_HOST:ADMIN_PORT.
  --help     this text
  --version  version, git commit and whether the tree it was built from had uncommitted changes
  openapi    print the OpenAPI document (what openapi.json holds)
Configured only by environment variables:

"""


@dataclass(frozen=True, slots=True)
class Command:
    """What the server half is asked to do, with the configuration already checked."""

    name: Literal["serve", "openapi"]
    config: Config


def version_line(build: BuildInfo) -> str:
    """`svc 0.1.0 commit 0123abcd4567 dirty`: what `svc --version` prints; unknown parts say so."""
    commit = (build.commit or "unknown")[:12]
    dirty = {True: "dirty", False: "clean", None: "dirty-unknown"}[build.dirty]
    return f"svc {build.version or 'unknown'} commit {commit} {dirty}"


def answer(argv: Sequence[str], getenv: Getenv, stdout: IO[str], stderr: IO[str]) -> Command | int:
    """Answer what needs no server (help, version, bad arguments, bad config) with an exit code; else the Command."""
    args = list(argv[1:])
    if args and args[0] in ("-h", "--help"):
        stdout.write(USAGE + help_table() + "\n")
        return EXIT_OK
    if args == ["--version"]:
        stdout.write(version_line(read_build_info()) + "\n")
        return EXIT_OK
    if args not in ([], ["openapi"]):
        stderr.write(f"svc: unknown arguments {' '.join(args)!r}; see svc --help\n")
        return EXIT_CONFIG
    try:
        config = Config.from_env(getenv)
    except ConfigError as err:
        for problem in err.problems:
            stderr.write(f"config error: {problem}\n")
        return EXIT_CONFIG
    return Command("openapi" if args else "serve", config)


def main() -> None:
    """Console-script and `python -m svc` entry point."""
    answered = answer(sys.argv, os.environ.get, sys.stdout, sys.stderr)
    if isinstance(answered, int):
        sys.exit(answered)
    # The server stack (Litestar, uvicorn, OpenTelemetry, Sentry) takes a second or more to import; only a command
    # that serves or builds the app pays for it, so --help and config errors answer at once.
    from svc import main as server  # noqa: PLC0415

    server.tune_gc()
    sys.exit(server.run(sys.argv, os.environ.get, sys.stdout))
