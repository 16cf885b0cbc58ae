"""Operating Tether: request ids and structured logs, readiness, Prometheus metrics.

Everything here is opt-in or cheap: `/metrics` exists only with `--expose-prometheus`, and the
request middleware does a few attribute lookups per request when metrics are off.
"""
