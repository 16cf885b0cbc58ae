"""MLflow 3 logged models: REST API and search, differential against `mlflow server`."""
