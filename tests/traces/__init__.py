"""MLflow 3 tracing: traces, spans over OTLP, assessments, search, metrics; differential
against `mlflow server`, the stock client end to end, limits, memory and storage."""
