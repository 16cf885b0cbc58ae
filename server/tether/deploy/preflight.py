"""Checks made before anything billable exists (issue 18, "fail before spending money").

Facts from docs/azureml-deploy.md ("D§n"):
- names: 3-32 characters, a letter first, letters/digits/single dashes (D§5, the SDK regex);
- only the `python_function` flavour deploys without a scoring script (D§1);
- the 2026 no-code score script imports `azureml.ai.monitoring` and crashes on MLflow 3.x, both
  installed from the model's own conda.yaml (D§1): such a model is refused with what to change;
- an instance type from the managed online endpoint SKU list, 1-50 instances (D§5).
The vCPU quota is Azure's to tell: its synchronous 400 on the deployment PUT (D§2) arrives
before any instance exists, and the endpoint Tether made for it is removed again.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tether.errors import invalid_parameter

NAME_RE = re.compile(r"^[a-zA-Z](?!.*--)([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
DEFAULT_INSTANCE_TYPE = "Standard_DS3_v2"  # MS samples' and the SDK's minimum recommended (D§5)
# A subset of the managed online endpoints SKU list (learn.microsoft.com
# reference-managed-online-endpoints-vm-sku-list), with their vCPUs for the cost note.
INSTANCE_TYPES = {
    "Standard_DS1_v2": 1,
    "Standard_DS2_v2": 2,
    "Standard_DS3_v2": 4,
    "Standard_DS4_v2": 8,
    "Standard_DS5_v2": 16,
    "Standard_F2s_v2": 2,
    "Standard_F4s_v2": 4,
    "Standard_F8s_v2": 8,
    "Standard_F16s_v2": 16,
    "Standard_E4s_v3": 4,
    "Standard_NC6s_v3": 6,
}
MLFLOW_3_PIN = re.compile(r"^mlflow(-skinny)?\s*(==|>=|~=)\s*3", re.I)


def check_name(name: str, what: str = "deployment") -> None:
    if not (3 <= len(name) <= 32 and NAME_RE.match(name)):
        raise invalid_parameter(
            f"Invalid {what} name {name!r}: Azure ML needs 3-32 characters, starting with a "
            "letter, then letters, digits and single dashes, not ending with a dash."
        )


def check_sizing(instance_type: str, instance_count: int) -> None:
    if instance_type not in INSTANCE_TYPES:
        known = ", ".join(sorted(INSTANCE_TYPES))
        raise invalid_parameter(
            f"Unknown instance_type {instance_type!r} for a managed online deployment; "
            f"use one of {known}."
        )
    if not 1 <= instance_count <= 50:
        raise invalid_parameter(f"instance_count must be 1-50 (got {instance_count}).")


def check_model(mlmodel: str | None, conda: str | None, uri: str) -> None:
    """The model's MLmodel and conda.yaml texts (None: file missing)."""
    if mlmodel is None:
        raise invalid_parameter(f"{uri} has no MLmodel file: it is not an MLflow model.")
    flavors = _mapping(yaml.safe_load(mlmodel)).get("flavors")
    if "python_function" not in _mapping(flavors):
        raise invalid_parameter(
            f"{uri} has no python_function flavor (flavors: {sorted(_mapping(flavors))}): "
            "Azure ML deploys only pyfunc models without a scoring script."
        )
    deps = _pip_requirements(conda)
    if not any(d.lower().startswith("azureml-ai-monitoring") for d in deps):
        raise invalid_parameter(
            f"{uri} cannot start in Azure ML: its conda.yaml lacks azureml-ai-monitoring, which "
            "Azure's no-code scoring script imports. Log the model with "
            'pip_requirements=["mlflow<3", "azureml-ai-monitoring", ...].'
        )
    if any(MLFLOW_3_PIN.match(d) for d in deps):
        raise invalid_parameter(
            f"{uri} cannot start in Azure ML: its conda.yaml pins MLflow 3.x, which crashes "
            'Azure\'s inference server. Log the model with pip_requirements=["mlflow<3", ...].'
        )


def _pip_requirements(conda: str | None) -> list[str]:
    found: list[str] = []
    for entry in _mapping(yaml.safe_load(conda or "") or {}).get("dependencies") or []:
        if isinstance(entry, dict):
            found.extend(str(p).strip() for p in entry.get("pip") or [])
        else:
            found.append(str(entry).strip())
    return found


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
