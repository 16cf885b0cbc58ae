"""The model registry: differential, search parsers, outbox records."""
