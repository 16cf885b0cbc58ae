"""MLflow 3 logged models: creation, lifecycle, params, tags, metrics and search."""
