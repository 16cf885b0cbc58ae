"""Deploying registered model versions to Azure ML managed online endpoints (issue 18).

A feature above `sync` and `registry`: it reads the sync state to find a version's Azure id
and uses the sync package's workspace client (tokens, throttling) for ARM.
"""
