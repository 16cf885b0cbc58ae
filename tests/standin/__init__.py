"""A stand-in Azure ML workspace and managed identity for the sync worker's tests.

See README.md in this folder. The fixtures (`azureml_identity`, `azureml_workspace`) are in
tests/conftest.py; the classes behind them are `identity.ManagedIdentityEndpoint` and
`workspace.AzuremlWorkspace`. Submodules are imported lazily so that collecting unrelated tests
does not pay for Starlette, azure-storage-blob and cryptography.
"""
