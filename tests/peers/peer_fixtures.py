"""pytest fixtures for the real peers: jaeger, prometheus, sentry_receiver, spotlight, elasticsearch."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.peers.binaries import peer
from tests.peers.elasticsearch import ElasticsearchPeer
from tests.peers.jaeger import JaegerPeer
from tests.peers.prometheus import PrometheusPeer
from tests.peers.sentry import RunningSink, start_sink
from tests.peers.spotlight import SpotlightPeer

StartPrometheus = Callable[[Mapping[str, str]], PrometheusPeer]


@pytest.fixture
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JaegerPeer]:
    """Real Jaeger v2 with the lab's config (in-memory storage) on free loopback ports; healthy when yielded."""
    binary = peer("jaeger")
    instance = JaegerPeer(binary, tmp_path_factory.mktemp("jaeger"))
    try:
        yield instance.wait_healthy()
    finally:
        instance.stop()


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartPrometheus]:
    """Starts real Prometheus scraping ``{job_name: "host:port"}`` targets (the lab's job names); ready when returned.

    A factory, because the targets (the service's admin port) exist only once the test has started them.
    """
    binary = peer("prometheus")
    started: list[PrometheusPeer] = []

    def start(targets: Mapping[str, str]) -> PrometheusPeer:
        instance = PrometheusPeer(binary, tmp_path_factory.mktemp("prometheus"), targets)
        started.append(instance)
        return instance.wait_ready()

    try:
        yield start
    finally:
        for instance in started:
            instance.stop()


@pytest.fixture
def sentry_receiver() -> Iterator[RunningSink]:
    """The lab's Sentry sink in this process on a free loopback port; ``.dsn`` is what SENTRY_DSN needs."""
    sink = start_sink(key="svc-test-key")
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def spotlight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpotlightPeer]:
    """Real Sentry Spotlight (the lab's error view) on a port of its choosing; healthy when yielded."""
    instance = SpotlightPeer(peer("spotlight"), tmp_path_factory.mktemp("spotlight"))
    try:
        yield instance.wait_ready()
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def elasticsearch() -> Iterator[ElasticsearchPeer]:
    """One real Elasticsearch node for the whole session (it takes tens of seconds to start); green when yielded.

    Tests share it, so each one writes to its own index or data stream name. Its directory is not under pytest's
    (0700) temp root, since under CI the node runs as another user.
    """
    server_args, java = peer("elasticsearch"), peer("elasticsearch-java")
    workdir = Path(tempfile.mkdtemp(prefix="svc-es-"))
    instance = ElasticsearchPeer(server_args, java, workdir)
    try:
        yield instance.wait_healthy()
    finally:
        instance.stop()
        shutil.rmtree(workdir, ignore_errors=True)
