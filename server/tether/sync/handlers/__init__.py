"""Per entity type: how one outbox row is applied to the workspace."""
