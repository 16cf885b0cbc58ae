"""Hostile input: bounded searches and paths, logs that never break or leak, special files."""
