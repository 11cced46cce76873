"""Makes the peer fixtures available here; tests/conftest.py may load tests.peers.peer_fixtures suite-wide instead."""

from tests.peers.peer_fixtures import jaeger, prometheus, sentry_receiver, spotlight

__all__ = ["jaeger", "prometheus", "sentry_receiver", "spotlight"]
