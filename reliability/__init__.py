"""Reliability harness: bounded loopback load, faulty telemetry backends, and the slow runs behind scripts/.

`scripts/shutdown-under-load`, `scripts/soak` and `scripts/backend-faults` run the modules here; the fast
variants of the same checks live in tests/reliability/ and use the same load generator.
"""
