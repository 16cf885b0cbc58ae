"""HTTP endpoint of MLflow 3's evaluation-dataset search (the UI's Datasets tab)."""

from __future__ import annotations

from tether.api.access import READ, experiment
from tether.api.routing import MLFLOW3_PREFIXES, Router
from tether.tracking.evaluation_datasets import schemas, service

api = Router("evaluation-datasets", prefixes=MLFLOW3_PREFIXES)


# Each experiment searched must be readable. MLflow also refuses a search naming none (403);
# here that search finds nothing, as it does for everyone (no evaluation dataset is stored).
@api.route("/datasets/search", ["GET", "POST"], access=READ.on(experiment("experiment_ids")))
async def search_evaluation_datasets(
    body: schemas.SearchEvaluationDatasets,
) -> schemas.SearchEvaluationDatasetsResponse:
    datasets, token = service.search(body.max_results, body.page_token)
    response: schemas.SearchEvaluationDatasetsResponse = {"datasets": datasets} if datasets else {}
    if token:
        response["next_page_token"] = token
    return response
