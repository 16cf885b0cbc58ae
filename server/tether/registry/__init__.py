"""MLflow's model registry: registered models, model versions, tags, stages and aliases."""
