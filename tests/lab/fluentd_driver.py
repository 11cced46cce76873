"""What Docker's fluentd logging driver sends for each line a container writes (daemon/logger/fluentd).

Every value is a string; the trailing newline is gone; `container_name` has Docker's leading slash. A line longer
than Docker's 16 KiB read buffer arrives as several records sharing a partial_id, with partial_message="true",
partial_ordinal counting from 1 and partial_last="true" on the final piece. As the real driver was seen to do:

- it splits on raw bytes, so a piece may end inside a multi-byte character: such pieces are `bytes` here (a piece
  that is valid UTF-8 on its own stays `str`); Fluent Bit joins the bytes before anything decodes them;
- its record is a Go map, so the key order differs from record to record: `order` shuffles it (pass a seeded
  `random.Random` for a fixed order); nothing downstream may depend on it.
"""

from __future__ import annotations

import random
import uuid

from .fluentbit import Event, Stamp

DOCKER_LINE_LIMIT = 16 * 1024  # bytes per message before Docker splits a line into partial messages

_ORDER = random.Random()


def _text(piece: bytes) -> str | bytes:
    """A piece as str when it decodes on its own, else the raw bytes (it ends or starts inside a character)."""
    try:
        return piece.decode()
    except UnicodeDecodeError:
        return piece


def pieces(line: str, limit: int = DOCKER_LINE_LIMIT) -> list[str | bytes]:
    """Docker's split of one line: `limit` raw bytes per piece, wherever that falls."""
    raw = line.encode()
    return [_text(raw[i : i + limit]) for i in range(0, max(len(raw), 1), limit)]


def wrap(
    line: str,
    stamp: Stamp,
    tag: str = "svc",
    container_id: str = "4f1c" * 16,
    container_name: str = "/svc-lab-svc-1",
    source: str = "stdout",
    limit: int = DOCKER_LINE_LIMIT,
    order: random.Random = _ORDER,
) -> list[Event]:
    """The forward-protocol events the driver emits for one line of output."""
    base: list[tuple[str, object]] = [
        ("container_id", container_id),
        ("container_name", container_name),
        ("source", source),
    ]
    parts = pieces(line.rstrip("\n"), limit)
    if len(parts) == 1:
        return [Event(tag, stamp, _shuffled([*base, ("log", parts[0])], order))]
    partial_id = uuid.uuid4().hex * 2
    return [
        Event(
            tag,
            stamp,
            _shuffled(
                [
                    *base,
                    ("log", piece),
                    ("partial_message", "true"),
                    ("partial_id", partial_id),
                    ("partial_ordinal", str(ordinal)),
                    ("partial_last", "true" if ordinal == len(parts) else "false"),
                ],
                order,
            ),
        )
        for ordinal, piece in enumerate(parts, start=1)
    ]


def _shuffled(pairs: list[tuple[str, object]], order: random.Random) -> list[tuple[str, object]]:
    out = list(pairs)
    order.shuffle(out)
    return out
