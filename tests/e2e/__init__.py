"""End to end: the real MLflow 3.x and 2.x clients against Tether and `mlflow server`."""
