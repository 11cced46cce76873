"""What Docker's fluentd logging driver sends for each line a container writes (daemon/logger/fluentd).

Every value is a string; the trailing newline is gone; `container_name` has Docker's leading slash. A line longer
than Docker's 16 KiB read buffer arrives as several records sharing a partial_id, with partial_message="true",
partial_ordinal counting from 1 and partial_last="true" on the final piece.
"""

from __future__ import annotations

import uuid

from .fluentbit import Event, Stamp

DOCKER_LINE_LIMIT = 16 * 1024  # bytes per message before Docker splits a line into partial messages


def _pieces(line: str, limit: int) -> list[str]:
    """Split at most `limit` UTF-8 bytes per piece, never inside a character."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            pieces.append("".join(current))
            current = []
            size = 0
        current.append(char)
        size += width
    pieces.append("".join(current))
    return pieces


def wrap(
    line: str,
    stamp: Stamp,
    tag: str = "svc",
    container_id: str = "4f1c" * 16,
    container_name: str = "/svc-lab-svc-1",
    source: str = "stdout",
    limit: int = DOCKER_LINE_LIMIT,
) -> list[Event]:
    """The forward-protocol events the driver emits for one line of output."""
    base = [("container_id", container_id), ("container_name", container_name), ("source", source)]
    pieces = _pieces(line.rstrip("\n"), limit)
    if len(pieces) == 1:
        return [Event(tag, stamp, [*base, ("log", pieces[0])])]
    partial_id = uuid.uuid4().hex * 2
    return [
        Event(
            tag,
            stamp,
            [
                *base,
                ("log", piece),
                ("partial_message", "true"),
                ("partial_id", partial_id),
                ("partial_ordinal", str(ordinal)),
                ("partial_last", "true" if ordinal == len(pieces) else "false"),
            ],
        )
        for ordinal, piece in enumerate(pieces, start=1)
    ]
