__version__ = "0.1.0"
# The MLflow release whose REST API (and web UI) Tether implements: what `GET /version`
# answers, as `mlflow server` answers its own version, so clients' feature checks pass
# (MLflow 3's span logging needs a server >= 3.4). Tether's own version is `__version__`.
MLFLOW_VERSION = "3.17.2"
