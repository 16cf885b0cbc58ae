"""The identity Tether uses towards Azure: never interactive, refreshable on demand."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CertificateCredential,
    ChainedTokenCredential,
    ClientSecretCredential,
    EnvironmentCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from tether.sync.azureml.errors import PermanentError, TransientError

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


def named_credential(name: str) -> Callable[[], TokenCredential]:
    """A workspace binding's own identity (`--credential NAME`), from the server's environment:
    `TETHER_AZURE_CREDENTIAL_<NAME>_TENANT_ID` and `_CLIENT_ID` with `_CLIENT_SECRET` or
    `_CLIENT_CERTIFICATE_PATH` (a service principal), or `_CLIENT_ID` alone (a user-assigned
    managed identity). The secret stays in the environment: never in the database, never in
    a log or an error (which name the variables, not their values)."""
    prefix = f"TETHER_AZURE_CREDENTIAL_{name.upper()}_"

    def env(key: str) -> str | None:
        return os.environ.get(prefix + key) or None

    client_id, tenant_id = env("CLIENT_ID"), env("TENANT_ID")
    secret, certificate = env("CLIENT_SECRET"), env("CLIENT_CERTIFICATE_PATH")
    if client_id is None:
        raise PermanentError(f"credential {name!r} is not configured: set {prefix}CLIENT_ID")
    if (secret or certificate) and tenant_id is None:
        raise PermanentError(f"credential {name!r} has a secret but no {prefix}TENANT_ID")
    if secret is not None and tenant_id is not None:
        return lambda: ClientSecretCredential(tenant_id, client_id, secret)
    if certificate is not None and tenant_id is not None:
        return lambda: CertificateCredential(tenant_id, client_id, certificate_path=certificate)
    return lambda: ManagedIdentityCredential(client_id=client_id)


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
