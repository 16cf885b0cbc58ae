"""Low-level operating hooks, shared by every layer: the request id (`context`), one-line
log records with redaction (`logs`, `redact`), the request middleware that times and logs
each request (`middleware`), counting hooks for the sync worker (`events`) and the
Prometheus sample directory (`prometheus_dir`).

Everything here is opt-in or cheap: the request middleware does a few attribute lookups per
request when metrics are off. What reports on the store and the sync queue (readiness,
`/metrics`) is composition and lives in `tether.ops`.
"""
