"""Health, readiness, Prometheus metrics and logs of a running server."""
