"""The identity Tether uses towards Azure: never interactive, refreshable on demand."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from azure.core.credentials import TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CertificateCredential,
    ChainedTokenCredential,
    ClientSecretCredential,
    EnvironmentCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
    aio,
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


@dataclass(frozen=True)
class NamedIdentity:
    """`TETHER_AZURE_CREDENTIAL_<NAME>_*` as read from the environment (see
    `named_credential`); `storage` is the variables a Blob destination may use instead."""

    prefix: str
    client_id: str | None
    tenant_id: str | None
    secret: str | None
    certificate: str | None
    storage: dict[str, str]


def _named(name: str) -> NamedIdentity:
    prefix = f"TETHER_AZURE_CREDENTIAL_{name.upper()}_"

    def env(key: str) -> str | None:
        return os.environ.get(prefix + key) or None

    storage = {
        variable: value
        for variable in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCESS_KEY")
        if (value := env(variable.removeprefix("AZURE_")))
    }
    return NamedIdentity(
        prefix,
        env("CLIENT_ID"),
        env("TENANT_ID"),
        env("CLIENT_SECRET"),
        env("CLIENT_CERTIFICATE_PATH"),
        storage,
    )


def _checked(name: str, ident: NamedIdentity) -> str:
    if ident.client_id is None:
        raise PermanentError(f"credential {name!r} is not configured: set {ident.prefix}CLIENT_ID")
    if (ident.secret or ident.certificate) and ident.tenant_id is None:
        raise PermanentError(f"credential {name!r} has a secret but no {ident.prefix}TENANT_ID")
    return ident.client_id


def named_credential(name: str) -> Callable[[], TokenCredential]:
    """A workspace binding's own identity (`--credential NAME`), from the server's environment:
    `TETHER_AZURE_CREDENTIAL_<NAME>_TENANT_ID` and `_CLIENT_ID` with `_CLIENT_SECRET` or
    `_CLIENT_CERTIFICATE_PATH` (a service principal), or `_CLIENT_ID` alone (a user-assigned
    managed identity). The secret stays in the environment: never in the database, never in
    a log or an error (which name the variables, not their values)."""
    ident = _named(name)
    client_id = _checked(name, ident)
    tenant_id, secret, certificate = ident.tenant_id, ident.secret, ident.certificate
    if secret is not None and tenant_id is not None:
        return lambda: ClientSecretCredential(tenant_id, client_id, secret)
    if certificate is not None and tenant_id is not None:
        return lambda: CertificateCredential(tenant_id, client_id, certificate_path=certificate)
    return lambda: ManagedIdentityCredential(client_id=client_id)


def named_blob_access(name: str) -> tuple[dict[str, str], AsyncTokenCredential | None]:
    """How a binding's named credential reaches its Blob artifacts destination: as
    `AzureBlobBackend(env=..., credential=...)` takes it. An account key or connection string
    of its own (`TETHER_AZURE_CREDENTIAL_<NAME>_STORAGE_CONNECTION_STRING` or
    `_STORAGE_ACCESS_KEY`: a key-based account, Azurite) when set, else the named identity
    itself (Entra ID, as for Azure ML). Never the server's own storage variables: the
    destination is reached with this credential or not at all."""
    ident = _named(name)
    if ident.storage:
        return dict(ident.storage), None
    client_id = _checked(name, ident)
    if ident.secret is not None and ident.tenant_id is not None:
        return {}, aio.ClientSecretCredential(ident.tenant_id, client_id, ident.secret)
    if ident.certificate is not None and ident.tenant_id is not None:
        return {}, aio.CertificateCredential(
            ident.tenant_id, client_id, certificate_path=ident.certificate
        )
    return {}, aio.ManagedIdentityCredential(client_id=client_id)


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
