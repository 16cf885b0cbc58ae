"""Run-history artifacts: records, SAS URLs into Azurite, limits (§5, §8.2.8).

§n: sections of docs/azureml-protocol.md.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from standin.helpers import AzClient
from standin.workspace import AzuremlWorkspace

PUT_HEADERS = {"x-ms-blob-type": "BlockBlob", "If-None-Match": "*"}


def _batch(az: AzClient, run: dict[str, Any], paths: list[str], kind: str = "experiments") -> Any:
    response = az.http.post(
        az.artifacts_url(run, "/batch/metadata", kind), json={"paths": [{"path": p} for p in paths]}
    )
    assert response.status_code == 200, response.text
    return response.json()


def _put(sas_url: str, data: bytes) -> httpx.Response:
    return httpx.put(sas_url, content=data, headers=PUT_HEADERS, trust_env=False)


@pytest.mark.parametrize("kind", ["experiments", "experimentids"])
def test_upload_through_sas_and_read_back(
    az: AzClient, azureml_workspace: AzuremlWorkspace, kind: str
) -> None:
    ws = azureml_workspace
    run = az.run()
    run_id = run["info"]["run_id"]
    body = _batch(az, run, ["model/MLmodel", "metrics.json"], kind)
    assert body["errors"] == {}
    record = body["artifacts"]["model/MLmodel"]
    assert record["artifactId"] == f"ExperimentRun/dcid.{run_id}/model/MLmodel"
    assert (record["origin"], record["container"]) == ("ExperimentRun", f"dcid.{run_id}")
    info = body["artifactContentInformation"]["model/MLmodel"]
    sas = info["contentUri"]
    assert sas.startswith(f"{ws.blob_endpoint}/{ws.workspace_id}-azureml/ExperimentRun/dcid.")
    assert "sig=" in sas and "se=" in sas
    assert _put(sas, b"flavors: {}\n").status_code == 201
    assert ws.artifacts.read(run_id, "model/MLmodel") == b"flavors: {}\n"
    # Re-upload with If-None-Match: * conflicts (Azurite implements it).
    again = _put(sas, b"other")
    assert again.status_code == 409 and "<Code>BlobAlreadyExists</Code>" in again.text
    # Listing and contentinfo answer from the records.
    listing = az.http.get(az.artifacts_url(run)).json()
    assert sorted(a["path"] for a in listing["value"]) == ["metrics.json", "model/MLmodel"]
    assert listing["continuationToken"] is None
    content = az.http.get(az.artifacts_url(run, "/contentinfo"), params={"path": "model/MLmodel"})
    assert content.status_code == 200
    read_sas = content.json()["contentUri"]
    assert httpx.get(read_sas, trust_env=False).content == b"flavors: {}\n"
    assert _put(read_sas.replace("model/MLmodel", "model/x"), b"x").status_code == 403
    metadata = az.http.get(az.artifacts_url(run, "/metadata"), params={"path": "metrics.json"})
    assert metadata.json()["path"] == "metrics.json"


def test_batch_metadata_limit_and_path_errors(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    run = az.run()
    too_many = az.http.post(
        az.artifacts_url(run, "/batch/metadata"),
        json={"paths": [{"path": f"f{i}"} for i in range(101)]},
    )
    assert too_many.status_code == 400
    error = too_many.json()["error"]
    assert error["message"] == "Artifact batch size exceeded the limit of 100"
    assert set(too_many.json()) >= {"error", "correlation", "componentName", "time"}
    assert azureml_workspace.artifact_index(run["info"]["run_id"]) == []
    body = _batch(az, run, [f"f{i}" for i in range(99)] + ["../escape"])
    assert len(body["artifacts"]) == 99
    assert list(body["errors"]) == ["../escape"]
    assert body["errors"]["../escape"]["error"]["code"] == "ValidationError"


def test_unknown_run_or_experiment(az: AzClient) -> None:
    run = az.run()
    ghost = {"info": {**run["info"], "run_id": "f" * 32}}
    missing = az.http.get(az.artifacts_url(ghost))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "UserError"
    elsewhere = {"info": {**run["info"], "experiment_id": az.experiment()}}
    assert az.http.get(az.artifacts_url(elsewhere)).status_code == 404
    absent = az.http.get(az.artifacts_url(run, "/contentinfo"), params={"path": "nope"})
    assert absent.status_code == 404


def test_index_is_separate_from_the_blobs(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    """A blob written without a batch/metadata record is invisible (§5.4)."""
    ws = azureml_workspace
    run = az.run()
    run_id = run["info"]["run_id"]
    with ws.artifacts.container_client() as container:
        container.upload_blob(f"ExperimentRun/dcid.{run_id}/sneaky.txt", b"x")
    assert ws.artifacts.run_files(run_id) == ["sneaky.txt"]
    assert az.http.get(az.artifacts_url(run)).json()["value"] == []
    contentinfo = az.http.get(az.artifacts_url(run, "/contentinfo"), params={"path": "sneaky.txt"})
    assert contentinfo.status_code == 404


def test_listing_pages_and_prefix(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    azureml_workspace.quirks(artifact_list_page_size=2)
    run = az.run()
    _batch(az, run, ["a/1", "a/2", "a/3", "b/1", "ab"])
    seen: list[str] = []
    token = None
    for _ in range(5):
        params = {"continuationToken": token} if token else None
        page = az.http.get(az.artifacts_url(run), params=params).json()
        seen += [a["path"] for a in page["value"]]
        token = page["continuationToken"]
        if token is None:
            break
    assert seen == ["a/1", "a/2", "a/3", "b/1", "ab"]
    under_a = az.http.get(az.artifacts_url(run, "/path"), params={"path": "a"}).json()
    assert [a["path"] for a in under_a["value"]] == ["a/1", "a/2"]


def test_expired_sas_is_refused_by_storage(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    azureml_workspace.quirks(sas_ttl_seconds=-60)
    run = az.run()
    sas = _batch(az, run, ["late.txt"])["artifactContentInformation"]["late.txt"]["contentUri"]
    response = _put(sas, b"x")
    assert response.status_code == 403
    assert "AuthenticationFailed" in response.text or "AuthorizationFailure" in response.text


def test_local_upload_batch_metadata(az: AzClient, azureml_workspace: AzuremlWorkspace) -> None:
    ws = azureml_workspace
    container = "240101T000000-abcd1234"
    url = (
        f"{ws.https_base}/artifact/v2.0{ws.scope}/artifacts/LocalUpload/{container}/batch/metadata"
    )
    response = az.http.post(url, json={"paths": [{"path": "model/MLmodel"}]})
    assert response.status_code == 200, response.text
    sas = response.json()["artifactContentInformation"]["model/MLmodel"]["contentUri"]
    assert _put(sas, b"m").status_code == 201
    assert ws.artifacts.read_blob("LocalUpload/240101T000000-abcd1234/model/MLmodel") == b"m"


def test_lost_response_on_batch_metadata_still_creates_records(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    ws = azureml_workspace
    run = az.run()
    ws.faults(path="/batch/metadata$", action="lost_response")
    with pytest.raises(httpx.TransportError):
        az.http.post(az.artifacts_url(run, "/batch/metadata"), json={"paths": [{"path": "p"}]})
    assert [r["path"] for r in ws.artifact_index(run["info"]["run_id"])] == ["p"]
    # Asking again for the same path gives a fresh SAS for the same record (assumption, §8.3).
    body = _batch(az, run, ["p"])
    assert body["artifacts"]["p"]["etag"] == ws.artifact_index(run["info"]["run_id"])[0]["etag"]


def test_storage_pass_through_logs_blob_writes_and_takes_faults(
    az: AzClient, azureml_workspace: AzuremlWorkspace
) -> None:
    """Quirk `blob_via_front`: SAS URLs point at the front, which forwards to Azurite as is."""
    ws = azureml_workspace
    ws.quirks(blob_via_front=True)
    run = az.run()
    run_id = run["info"]["run_id"]
    sas = _batch(az, run, ["a.bin"])["artifactContentInformation"]["a.bin"]["contentUri"]
    assert sas.startswith(f"{ws.https_base}/_storage/")
    mark = ws.mark()
    with httpx.Client(verify=ws.ssl_context(), trust_env=False) as http:
        ws.faults(path="/_storage/.*a\\.bin$", action="status", status=503, times=1)
        busy = http.put(sas, content=b"data", headers=PUT_HEADERS)
        assert busy.status_code == 503 and busy.headers["x-ms-error-code"] == "ServerBusy"
        assert http.put(sas, content=b"data", headers=PUT_HEADERS).status_code == 201
        assert http.put(sas, content=b"other", headers=PUT_HEADERS).status_code == 409
        head = http.head(sas, headers={"x-ms-version": "2021-08-06"})
        assert head.status_code == 200 and head.headers["Content-Length"] == "4"
        assert head.headers.get("Content-MD5"), "storage computed the MD5 of a Put Blob"
    assert ws.artifacts.read(run_id, "a.bin") == b"data"
    assert ws.blob_commits(mark) == {f"ExperimentRun/dcid.{run_id}/a.bin": [503, 201, 409]}
    logged = ws.requests(mark, path="/_storage/")
    assert all("sig=" not in e["query"] for e in logged), "no SAS signature in the log"
