"""Store tests: migrations, group commit, metric sampling (no HTTP)."""
