"""Artifact proxy tests: local directory and Azure Blob (Azurite) stores."""
