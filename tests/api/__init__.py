"""HTTP toolkit tests: dispatch, errors, limits, keep-alive, workers, the OpenAPI document."""
