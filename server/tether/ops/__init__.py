"""Operations: liveness, readiness and Prometheus metrics, and their wiring into the app.

Composition, not a kit: readiness and metrics report on the database, the artifact store and
the sync queue together, so this package sits above `tether.sync` (see the layering in
pyproject.toml's import-linter contracts). The low-level hooks they build on (request ids,
log format, redaction, sync event counting) live in `tether.observability`.
"""
