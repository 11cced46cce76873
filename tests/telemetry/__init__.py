"""Issue 3: traces, metrics, errors, logs and profiles, checked against protocol-exact receivers."""
