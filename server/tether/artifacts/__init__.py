"""Artifact proxy: MLflow's mlflow-artifacts API over a local directory or Azure Blob Storage."""
