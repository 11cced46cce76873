"""Replays OUR Fluent Bit pipeline, read from deploy/fluent-bit/*.yaml, on records: a faithful, strict emulation.

No fluent-bit binary can run here (Debian bookworm has no package, PyPI and npm have none), so the tests emulate the
plugins the config uses, with the options the config sets, following Fluent Bit's documented and coded behaviour:

- multiline, mode partial_message: joins Docker's >16 KiB pieces (raw bytes) by partial_id and drops the partial_*
  keys; a group whose next piece has not arrived `flush_ms` after the last one is emitted as it is, and the pieces
  that come later make a second record (the real Fluent Bit 4.2.2 did exactly this: two svc.unparsed documents);
- parser filter + json parser: parsed fields first, then (reserve_data) the other original fields; time_key is
  parsed with time_format into the record time and removed unless time_keep; a failed parse leaves the record as is
  (an unparsable time keeps its key and text, e.g. "2026-12-01 18:00:00" after Fluent Bit's `invalid time format`);
- modify: rename/hard_rename/add/set/remove/copy/hard_copy in the order written;
- es output: prepends `time_key` formatted as time_key_format + ".mmmZ" (out_es always adds it), replace_dots, and
  sends each key once, the LAST copy winning: so with time_keep on (or an unparsable time) Elasticsearch gets the
  record's own @timestamp once, never two (seen with the real Fluent Bit; the contrary belief was wrong).

Not modelled, so no test may rely on it: delivery order (after retries the real Fluent Bit delivered documents out
of order; sort by @timestamp) and delivery count (at-least-once: a chunk re-sent after a crash arrives twice).

Anything else (another plugin, an option or value this module does not model) raises, so editing the config can
never make the contract tests pass by accident: the emulation has to be taught the change first.
"""

from __future__ import annotations

import calendar
import fnmatch
import json
import re
import shlex
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Pairs = list[tuple[str, Any]]  # a record as ordered key/value pairs: duplicate keys stay visible
Stamp = tuple[int, int]  # (seconds, nanoseconds) since the epoch, as Fluent Bit keeps event time


@dataclass
class Event:
    """One record in flight: its tag, time and key/value pairs."""

    tag: str
    time: Stamp
    record: Pairs
    arrival: float = 0.0  # seconds on Fluent Bit's clock when it received the record (multiline's flush_ms)

    def get(self, key: str) -> Any:
        """The first value of key, or None."""
        return next((v for k, v in self.record if k == key), None)

    def has(self, key: str) -> bool:
        """Whether key is present."""
        return any(k == key for k, _ in self.record)


class UnmodelledError(AssertionError):
    """The config uses something this emulation does not model: teach it before trusting the tests."""


def flag(value: Any) -> bool:
    """Fluent Bit's booleans: on/off, true/false, yes/no (YAML may have turned them into bools already)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"on", "true", "yes", "1"}:
        return True
    if text in {"off", "false", "no", "0"}:
        return False
    raise UnmodelledError(f"not a Fluent Bit boolean: {value!r}")


def as_list(value: Any) -> list[str]:
    """A property given once (string) or several times (YAML list)."""
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _known(section: str, props: dict[str, Any], allowed: set[str]) -> None:
    unknown = {key.lower() for key in props} - allowed
    if unknown:
        raise UnmodelledError(f"{section}: options not modelled: {sorted(unknown)}")


# ------------------------------------------------------------------------------------------------ time format


def _time_regex(fmt: str) -> re.Pattern[str]:
    """Fluent Bit's strptime subset used by our parser (%L is its fractional-seconds extension)."""
    fields = {
        "%Y": r"(?P<Y>\d{4})",
        "%m": r"(?P<m>\d{2})",
        "%d": r"(?P<d>\d{2})",
        "%H": r"(?P<H>\d{2})",
        "%M": r"(?P<M>\d{2})",
        "%S": r"(?P<S>\d{2})",
        "%L": r"(?P<L>\d{1,9})",
    }
    out, i = "", 0
    while i < len(fmt):
        token = fmt[i : i + 2]
        if token in fields:
            out, i = out + fields[token], i + 2
        elif fmt[i] == "%":
            raise UnmodelledError(f"time_format directive {token!r} not modelled")
        else:
            out, i = out + re.escape(fmt[i]), i + 1
    return re.compile(out + r"\Z")


def parse_time(value: str, fmt: str) -> Stamp | None:
    """(seconds, nanoseconds) for value in fmt, UTC (the format has no zone); None when it does not match."""
    match = _time_regex(fmt).match(value)
    if match is None:
        return None
    g = match.groupdict()
    seconds = calendar.timegm((int(g["Y"]), int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), int(g["S"]), 0, 0, 0))
    return seconds, int((g.get("L") or "0").ljust(9, "0")[:9])


# ------------------------------------------------------------------------------------------------ raw bytes


def _concat(joined: Any, piece: Any) -> Any:
    """Two pieces of a split line, joined as Fluent Bit joins them: byte for byte."""
    if isinstance(joined, bytes) or isinstance(piece, bytes):
        as_bytes = [v if isinstance(v, bytes) else str(v).encode() for v in (joined, piece)]
        return _text(as_bytes[0] + as_bytes[1])
    return str(joined) + str(piece)


def _text(raw: bytes) -> str | bytes:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as err:
        raise UnmodelledError(
            f"a record still holds broken UTF-8 ({err}): Fluent Bit's handling is not modelled"
        ) from err


# ------------------------------------------------------------------------------------------------ the pipeline


class Pipeline:
    """deploy/fluent-bit's pipeline, loaded from its files."""

    def __init__(self, config_path: Path) -> None:
        self.path = config_path
        self.config = self._load(config_path)
        self.parsers = {p["name"]: p for p in self.config.get("parsers", [])}
        self.service: dict[str, Any] = self.config.get("service", {})
        pipeline = self.config.get("pipeline", {})
        self.inputs: list[dict[str, Any]] = pipeline.get("inputs", [])
        self.filters: list[dict[str, Any]] = pipeline.get("filters", [])
        self.outputs: list[dict[str, Any]] = pipeline.get("outputs", [])

    @staticmethod
    def _load(path: Path) -> dict[str, Any]:
        """The YAML config with `includes` merged in (lists of parsers/filters are concatenated)."""
        config: dict[str, Any] = yaml.safe_load(path.read_text())
        for included in config.pop("includes", []) or []:
            extra = Pipeline._load(path.parent / included)
            for key, value in extra.items():
                if isinstance(value, list):
                    config[key] = [*config.get(key, []), *value]
                else:
                    raise UnmodelledError(f"include {included}: top-level {key!r} not modelled")
        return config

    # -- filters ---------------------------------------------------------------------------------------------

    def run_filters(self, events: Iterable[Event]) -> list[Event]:
        """All events through every filter whose match covers their tag, in config order."""
        current = list(events)
        for spec in self.filters:
            name = str(spec["name"]).lower()
            pattern = str(spec.get("match", "*"))
            selected = [e for e in current if fnmatch.fnmatchcase(e.tag, pattern)]
            rest = [e for e in current if not fnmatch.fnmatchcase(e.tag, pattern)]
            if name == "multiline":
                done = self._multiline(spec, selected)
            elif name == "parser":
                done = [self._parser_filter(spec, e) for e in selected]
            elif name == "modify":
                done = [self._modify(spec, e) for e in selected]
            else:
                raise UnmodelledError(f"filter {name!r} not modelled")
            current = rest + done
        return current

    def _multiline(self, spec: dict[str, Any], events: list[Event]) -> list[Event]:
        _known(
            "multiline",
            spec,
            {
                "name",
                "match",
                "mode",
                "multiline.key_content",
                "buffer",
                "flush_ms",
                "emitter_name",
                "emitter_storage.type",
                "emitter_mem_buf_limit",
            },
        )
        if str(spec.get("mode")) != "partial_message":
            raise UnmodelledError(f"multiline mode {spec.get('mode')!r} not modelled")
        if not flag(spec.get("buffer", True)):
            raise UnmodelledError("multiline without buffer cannot join forward-input records (Fluent Bit docs)")
        key = str(spec["multiline.key_content"])
        flush_s = int(spec.get("flush_ms", 2000)) / 1000
        out: list[Event] = []
        open_parts: dict[str, tuple[Event, float]] = {}  # partial_id -> (record so far, arrival of its last piece)
        for event in events:
            # Fluent Bit's timer runs every flush_ms/2 and emits a group idle for more than flush_ms.
            for pid, (_, last) in list(open_parts.items()):
                idle = event.arrival - last
                if flush_s < idle <= 1.5 * flush_s:
                    raise UnmodelledError(f"a {idle:.2f}s gap may or may not be cut (timer every flush_ms/2)")
                if idle > flush_s:
                    out.append(open_parts.pop(pid)[0])
            if str(event.get("partial_message")) != "true":
                out.append(event)
                continue
            pid = str(event.get("partial_id"))
            piece = event.get(key)
            if pid not in open_parts:
                first = [(k, v) for k, v in event.record if not k.startswith("partial_")]
                open_parts[pid] = (Event(event.tag, event.time, first, event.arrival), event.arrival)
            else:
                joined = open_parts[pid][0]
                joined.record = [(k, _concat(v, piece) if k == key else v) for k, v in joined.record]
                open_parts[pid] = (joined, event.arrival)
            if str(event.get("partial_last")) == "true":
                out.append(open_parts.pop(pid)[0])
        # Unfinished groups are flushed as they are after flush_ms in Fluent Bit; here the stream has ended.
        return out + [joined for joined, _ in open_parts.values()]

    def _parse_json(self, parser: dict[str, Any], text: str) -> tuple[Pairs, Stamp | None] | None:
        _known(f"parser {parser['name']}", parser, {"name", "format", "time_key", "time_format", "time_keep"})
        if str(parser["format"]) != "json":
            raise UnmodelledError(f"parser format {parser['format']!r} not modelled")
        try:
            pairs = json.loads(text, object_pairs_hook=list)
        except ValueError:
            return None
        if not isinstance(pairs, list) or (pairs and not isinstance(pairs[0], tuple)):
            return None  # JSON, but not an object: Fluent Bit's json parser needs a map
        stamp: Stamp | None = None
        time_key = parser.get("time_key")
        if time_key is not None:
            index = next((i for i, (k, _) in enumerate(pairs) if k == time_key), None)
            if index is not None and isinstance(pairs[index][1], str):
                stamp = parse_time(pairs[index][1], str(parser["time_format"]))
                # Fluent Bit drops the key only when the time parsed (a bad time keeps it, with a warning).
                if stamp is not None and not flag(parser.get("time_keep", False)):
                    del pairs[index]
        return pairs, stamp

    def _parser_filter(self, spec: dict[str, Any], event: Event) -> Event:
        _known("parser filter", spec, {"name", "match", "key_name", "parser", "reserve_data", "preserve_key"})
        key = str(spec["key_name"])
        value = event.get(key)
        if isinstance(value, bytes):
            value = _decoded(value)
        if not isinstance(value, str):
            return event
        for parser_name in as_list(spec["parser"]):
            parsed = self._parse_json(self.parsers[parser_name], value)
            if parsed is None:
                continue
            pairs, stamp = parsed
            if flag(spec.get("reserve_data", False)):
                keep_key = flag(spec.get("preserve_key", False))
                pairs = pairs + [(k, v) for k, v in event.record if keep_key or k != key]
            elif flag(spec.get("preserve_key", False)):
                pairs = [*pairs, (key, value)]
            return Event(event.tag, stamp or event.time, pairs)
        return event  # no parser matched: FLB_FILTER_NOTOUCH

    def _modify(self, spec: dict[str, Any], event: Event) -> Event:
        rules = {"rename", "hard_rename", "add", "set", "remove", "copy", "hard_copy"}
        _known("modify", spec, {"name", "match"} | rules)
        record = list(event.record)
        for key, raw in spec.items():
            rule = key.lower()
            if rule not in rules:
                continue
            for args in (shlex.split(entry) for entry in as_list(raw)):
                keys = [k for k, _ in record]
                if rule == "remove":
                    record = [(k, v) for k, v in record if k != args[0]]
                elif rule in {"add", "set"}:
                    if rule == "set":
                        record = [(k, v) for k, v in record if k != args[0]]
                    if args[0] not in keys or rule == "set":
                        record.append((args[0], args[1]))
                elif rule in {"rename", "hard_rename"}:
                    if args[0] in keys and (rule == "hard_rename" or args[1] not in keys):
                        record = [(args[1] if k == args[0] else k, v) for k, v in record if k != args[1]]
                elif args[0] in keys and (rule == "hard_copy" or args[1] not in keys):
                    value = next(v for k, v in record if k == args[0])
                    record = [(k, v) for k, v in record if k != args[1]] + [(args[1], value)]
        return Event(event.tag, event.time, record)

    # -- output ----------------------------------------------------------------------------------------------

    def es_output(self, tag: str) -> dict[str, Any]:
        """The es output whose match covers tag (exactly one)."""
        found = [o for o in self.outputs if fnmatch.fnmatchcase(tag, str(o.get("match", "*")))]
        assert len(found) == 1, f"want one output for {tag!r}, got {found}"
        assert str(found[0]["name"]) == "es", f"want the es output for {tag!r}, got {found}"
        return found[0]

    def to_document(self, event: Event) -> Pairs:
        """The bulk document out_es builds from an event: the time key first, then the record."""
        out = self.es_output(event.tag)
        _known(
            "es output",
            out,
            {
                "name",
                "match",
                "host",
                "port",
                "index",
                "write_operation",
                "suppress_type_name",
                "replace_dots",
                "time_key",
                "time_key_format",
                "time_key_nanos",
                "trace_error",
                "retry_limit",
                "storage.total_limit_size",
                "workers",
                "logstash_format",
                "include_tag_key",
                "generate_id",
            },
        )
        for option in ("logstash_format", "include_tag_key", "generate_id", "time_key_nanos"):
            if flag(out.get(option, False)):
                raise UnmodelledError(f"es output {option} on is not modelled")
        seconds, nanos = event.time
        stamp = time.strftime(str(out.get("time_key_format", "%Y-%m-%dT%H:%M:%S")), time.gmtime(seconds))
        stamp += f".{nanos // 1_000_000:03d}Z"
        replace = flag(out.get("replace_dots", False))
        record = [((k.replace(".", "_") if replace else k), v) for k, v in event.record]
        pairs = [(str(out.get("time_key", "@timestamp")), stamp), *record]
        for _, v in pairs:
            if isinstance(v, bytes):
                _decoded(v)  # raises: how Fluent Bit writes broken UTF-8 into JSON is not modelled
        # Each key once, the last copy winning (what the real out_es sent for a record holding time_key itself).
        last = {k: i for i, (k, _) in enumerate(pairs)}
        return [(k, v) for i, (k, v) in enumerate(pairs) if last[k] == i]

    def ship(self, events: Iterable[Event]) -> list[Pairs]:
        """Filters, then the es output: what Elasticsearch receives for these input events."""
        return [self.to_document(e) for e in self.run_filters(events)]
