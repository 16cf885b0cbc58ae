"""MLflow 3 tracing: traces, their spans, tags, metadata and assessments, the OTLP receiver,
search and metrics (MLflow 3.17's tracing API; README, "Traces")."""
