"""MLflow 3's evaluation datasets (GenAI): not stored by Tether yet, searched as empty."""
