"""Tether vs the reference `mlflow server` (and FastTrackML): see bench/README.md."""
