"""Real peers for the test suite: Jaeger, Prometheus and a Sentry receiver, run natively on loopback ports."""
