"""The identity Tether uses towards Azure: never interactive, refreshable on demand."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    ChainedTokenCredential,
    EnvironmentCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from tether.sync.azureml.errors import TransientError

ARM_SCOPE = "https://management.azure.com/.default"


def default_credential() -> TokenCredential:
    """Service principal or workload identity when configured, else the managed identity.

    azure-identity's DefaultAzureCredential (and azureml-mlflow's chain) can end in browser or
    device-code prompts, which would hang an unattended server; this chain cannot.
    """
    chain: list[TokenCredential] = []
    if os.environ.get("AZURE_FEDERATED_TOKEN_FILE"):
        chain.append(WorkloadIdentityCredential())
    if os.environ.get("AZURE_CLIENT_SECRET") or os.environ.get("AZURE_CLIENT_CERTIFICATE_PATH"):
        chain.append(EnvironmentCredential())
    chain.append(ManagedIdentityCredential(client_id=os.environ.get("AZURE_CLIENT_ID")))
    return chain[0] if len(chain) == 1 else ChainedTokenCredential(*chain)


class TokenProvider:
    """Bearer tokens for the ARM scope, asked for on every request (azure-identity caches).

    `refresh()` replaces the credential, dropping its cache: the one way to get a new token
    when Azure refuses one the local cache still considers valid. Lanes refused at the same
    time refresh once: `refresh(seen)` only replaces the credential the refused token came
    from (`generation`), the others just retry with the new one.
    """

    def __init__(
        self, factory: Callable[[], TokenCredential] = default_credential, scope: str = ARM_SCOPE
    ) -> None:
        self._factory = factory
        self._scope = scope
        self._lock = threading.Lock()
        self._credential = factory()
        self.generation = 0

    def token(self) -> str:
        return self.token_of_generation()[1]

    def token_of_generation(self) -> tuple[int, str]:
        """(generation of the credential it came from, token)."""
        with self._lock:
            generation, credential = self.generation, self._credential
        try:
            return generation, credential.get_token(self._scope).token
        except ClientAuthenticationError as exc:
            # The identity endpoint itself may be briefly unavailable; the worker retries.
            raise TransientError(f"cannot get an Azure token: {exc.message}") from exc

    def refresh(self, seen: int | None = None) -> bool:
        """A new credential, unless `seen` (the generation of a refused token) was already
        replaced by another lane; True when this call replaced it."""
        with self._lock:
            if seen is not None and seen != self.generation:
                return False
            self._credential = self._factory()
            self.generation += 1
            return True
