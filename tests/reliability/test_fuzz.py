"""Property-based fuzz of the whole public API from its own OpenAPI document (schemathesis).

Every operation gets schema-valid and schema-invalid requests; every response must be documented (status,
content type, headers, body schema), never a 5xx, and invalid input must be rejected with a 4xx. The stateful
run chains operations through the links schemathesis infers from the schema (POST /links -> GET, DELETE and
/r/ by slug). Requests go over real HTTP to the real service (uvicorn included), not an in-process client.

Bounded: a fixed number of examples per operation and no shrinking database on disk, so it finishes in
seconds. A failure prints a curl command that reproduces it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from harness.service import ServiceThread, base_env, service_thread
from svc.config import Config
from svc.main import openapi_document

# The document `svc openapi` prints, for the default configuration the fuzzed service runs with.
schema = schemathesis.openapi.from_dict(json.loads(openapi_document(Config())))

EXAMPLES_PER_OPERATION = 40
STATEFUL_SCENARIOS = 15
STATEFUL_STEPS = 6
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,  # nothing written to .hypothesis/ in the repository
    suppress_health_check=list(HealthCheck),
)
# GET /slow sleeps up to 5 s by design; a fuzzer that found that out would only make the suite slow.
MAX_FUZZ_SLEEP_MS = 20


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceThread]:
    """The real service (defaults, faults off) on free loopback ports, shared by every fuzz case."""
    with service_thread(base_env(tmp_path_factory.mktemp("fuzz"))) as svc:
        yield svc


def _cap_sleep(case: schemathesis.Case[Any]) -> None:
    # Valid delays (an int, or its digits as text) shrink below MAX_FUZZ_SLEEP_MS; anything else is left alone.
    if case.path != "/slow" or not isinstance(case.query, dict):
        return
    ms = case.query.get("ms")
    if isinstance(ms, bool):
        return
    if isinstance(ms, int) and 0 <= ms <= 5000:
        case.query["ms"] = ms % MAX_FUZZ_SLEEP_MS
    elif isinstance(ms, str) and ms.isascii() and ms.isdigit() and int(ms) <= 5000:
        case.query["ms"] = str(int(ms) % MAX_FUZZ_SLEEP_MS)


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_answers_fuzzed_input_as_documented(
    case: schemathesis.Case[Any], fuzzed: ServiceThread
) -> None:
    _cap_sleep(case)
    response = case.call_and_validate(base_url=fuzzed.url)
    assert response.status_code < 500, response.text


def test_stateful_sequences_answer_as_documented(fuzzed: ServiceThread) -> None:
    schema.config.update(base_url=fuzzed.url)
    machine = schema.as_state_machine()
    machine.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
