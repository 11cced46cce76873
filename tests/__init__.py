"""svc's test suite (a package, so tests.peers.peer_fixtures can be loaded as a pytest plugin)."""
