"""The checks made before anything billable exists (tether.deploy.preflight)."""

from __future__ import annotations

import pytest

from tether.deploy import preflight
from tether.errors import MlflowError

MLMODEL = "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n  sklearn: {}\n"
CONDA = "dependencies:\n- python=3.11\n- pip:\n  - {pins}\n"


def _conda(*pins: str) -> str:
    return CONDA.format(pins="\n  - ".join(pins))


@pytest.mark.parametrize("name", ["abc", "my-model-1", "A" * 32])
def test_valid_names(name: str) -> None:
    preflight.check_name(name)


@pytest.mark.parametrize("name", ["ab", "1abc", "abc-", "a_bc", "a--b", "A" * 33, "ab.c"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(MlflowError, match="Invalid deployment name"):
        preflight.check_name(name)


def test_a_deployable_model() -> None:
    preflight.check_model(MLMODEL, _conda("mlflow<3", "azureml-ai-monitoring~=1.0"), "models:/m/1")


@pytest.mark.parametrize(
    ("mlmodel", "conda", "message"),
    [
        (None, None, "no MLmodel"),
        (
            "flavors:\n  sklearn: {}\n",
            _conda("mlflow<3", "azureml-ai-monitoring"),
            "python_function",
        ),
        (MLMODEL, _conda("mlflow<3"), "azureml-ai-monitoring"),
        (MLMODEL, None, "azureml-ai-monitoring"),
        (MLMODEL, _conda("mlflow==3.17.2", "azureml-ai-monitoring"), "MLflow 3.x"),
        (MLMODEL, _conda("mlflow-skinny>=3.0", "azureml-ai-monitoring"), "MLflow 3.x"),
    ],
)
def test_undeployable_models(mlmodel: str | None, conda: str | None, message: str) -> None:
    with pytest.raises(MlflowError, match=message):
        preflight.check_model(mlmodel, conda, "models:/m/1")


def test_sizing() -> None:
    preflight.check_sizing("Standard_DS3_v2", 1)
    with pytest.raises(MlflowError, match="Unknown instance_type"):
        preflight.check_sizing("Standard_Nope", 1)
    with pytest.raises(MlflowError, match="1-50"):
        preflight.check_sizing("Standard_DS3_v2", 0)
