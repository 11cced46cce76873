"""Makes the peer fixtures available here; tests/conftest.py may load tests.peers.fixtures suite-wide instead."""

from tests.peers.fixtures import jaeger, prometheus, sentry_receiver, spotlight

__all__ = ["jaeger", "prometheus", "sentry_receiver", "spotlight"]
