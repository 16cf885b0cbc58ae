"""The sync worker: outbox, state, handlers, and end to end into the stand-in workspace."""
