"""Differential tests of the tracking API: Tether and `mlflow server` answer alike."""
