"""svc: an observability-first, sidecar-ready Litestar microservice. Importing it starts nothing."""
