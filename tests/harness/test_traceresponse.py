"""harness.traceresponse: a W3C traceresponse header into its parts; anything malformed or all-zero is None."""

from __future__ import annotations

import pytest

from harness.traceresponse import TraceResponse, parse_traceresponse

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_a_sampled_header_gives_its_ids_and_the_flag() -> None:
    parsed = parse_traceresponse(f"00-{TRACE}-{SPAN}-01")
    assert parsed == TraceResponse(TRACE, SPAN, 1)
    assert parsed.sampled


def test_flags_without_the_sampled_bit_are_not_sampled() -> None:
    parsed = parse_traceresponse(f"00-{TRACE}-{SPAN}-02")
    assert parsed is not None
    assert not parsed.sampled


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        f"01-{TRACE}-{SPAN}-01",  # a version svc never writes
        f"00-{TRACE.upper()}-{SPAN}-01",  # W3C ids are lowercase
        f"00-{TRACE[:-1]}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-1",
        f"00-{TRACE}-{SPAN}-01-extra",
        f" 00-{TRACE}-{SPAN}-01",
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero ids are invalid
        f"00-{TRACE}-{'0' * 16}-01",
    ],
)
def test_a_malformed_or_invalid_header_is_none(header: str | None) -> None:
    assert parse_traceresponse(header) is None
