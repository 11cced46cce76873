"""svc's test suite (a package, so tests.peers.fixtures can be loaded as a pytest plugin)."""
