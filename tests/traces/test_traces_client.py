"""End to end: the installed MLflow 3.x client (in-process) tracing against Tether, as a new
user would, on a local artifact store and on Azure Blob (Azurite).

`@mlflow.trace` and `mlflow.start_span` inside and outside runs, `mlflow.search_traces()` as
a list and a DataFrame, `mlflow.get_trace`, `log_feedback` / `log_expectation` and the other
assessment calls, `delete_traces`, OpenAI autologging against a stand-in OpenAI server, and
the OpenTelemetry SDK exporting to `/v1/traces`. The client must print no warning or error:
every record its loggers emit at WARNING or above fails the test. Span files must be in the
artifact store (the Azurite container lists them).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from support import TetherServer, unique_name
from support.mlflow3 import tracking_to

pytestmark = [
    pytest.mark.usefixtures("clean_mlflow_client"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning"),
]

STORES = [pytest.param("local", id="local"), pytest.param("azurite", id="azurite")]


@pytest.fixture(scope="module", params=STORES)
def store(request: pytest.FixtureRequest, make_backend_uri: Any) -> Iterator[dict[str, Any]]:
    """A Tether server on SQLite with its artifacts in a local directory or in Azurite. With
    Azurite every span batch goes to a segment file (inline segments off), so both places
    span content is kept are read by the same client flows."""
    extra: list[str] = []
    env: dict[str, str] = {}
    azurite = None
    container = None
    if request.param == "azurite":
        azurite = request.getfixturevalue("azurite")
        container = azurite.new_container()
        extra = ["--artifacts-destination", azurite.wasbs(container, "store")]
        env = {**azurite.env(), "TETHER_TRACE_INLINE_SEGMENT_BYTES": "0"}
    server = TetherServer(make_backend_uri("sqlite"), extra_args=extra, env=env)
    try:
        yield {"server": server, "kind": request.param, "azurite": azurite, "container": container}
    finally:
        server.stop()


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def client_warnings() -> Iterator[list[logging.LogRecord]]:
    """WARNING+ records of the MLflow and OpenTelemetry loggers during the test."""
    recorder = _Recorder()
    loggers = [logging.getLogger(name) for name in ("mlflow", "opentelemetry", "urllib3")]
    for logger in loggers:
        logger.addHandler(recorder)
    try:
        yield recorder.records
    finally:
        for logger in loggers:
            logger.removeHandler(recorder)


def _no_warnings(records: list[logging.LogRecord]) -> None:
    messages = [f"{r.name}: {r.getMessage()}" for r in records]
    assert not messages, messages


def _flush() -> None:
    mlflow.flush_trace_async_logging(terminate=False)


@mlflow.trace(name="retrieve", span_type="RETRIEVER")
def retrieve(query: str) -> list[str]:
    return [f"doc about {query}", "another doc"]


@mlflow.trace
def answer(question: str) -> str:
    docs = retrieve(question)
    with mlflow.start_span("generate", span_type="LLM") as span:
        span.set_inputs({"question": question, "docs": docs})
        reply = f"{question}? {len(docs)} docs say yes."
        span.set_outputs({"reply": reply})
    return reply


def _wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_trace_inside_and_outside_runs(store: dict[str, Any], client_warnings: Any) -> None:
    server: TetherServer = store["server"]
    with tracking_to(server.url):
        experiment_id = mlflow.set_experiment(unique_name("genai")).experiment_id
        answer("outside")
        with mlflow.start_run() as run:
            answer("inside")
            with mlflow.start_span("manual", span_type="CHAIN") as span:
                span.set_inputs("x")
                span.set_outputs("y")
        _flush()
        traces = _wait_for(
            lambda: (
                (found := mlflow.search_traces(return_type="list"))
                and len(found) == 3
                and all(len(t.data.spans) for t in found)
                and found
            ),
            "three traces with spans",
        )
        by_name = {t.info.tags["mlflow.traceName"]: t for t in traces}
        assert set(by_name) == {"answer", "manual"}
        inside = [t for t in traces if t.info.trace_metadata.get("mlflow.sourceRun")]
        assert len(inside) == 2
        assert all(t.info.trace_metadata["mlflow.sourceRun"] == run.info.run_id for t in inside)
        full = mlflow.get_trace(traces[-1].info.trace_id)
        names = sorted(s.name for s in full.data.spans)
        assert names == ["answer", "generate", "retrieve"]
        root = full.data.spans[0]
        assert root.parent_id is None and root.name == "answer"
        assert root.inputs == {"question": "outside"}
        generate = next(s for s in full.data.spans if s.name == "generate")
        assert generate.span_type == "LLM"
        assert generate.outputs == {"reply": "outside? 2 docs say yes."}
        frame = mlflow.search_traces(locations=[experiment_id])
        assert len(frame) == 3
        assert {"trace_id", "request", "response", "spans", "assessments"} <= set(frame.columns)
        in_run = mlflow.search_traces(locations=[experiment_id], run_id=run.info.run_id)
        assert len(in_run) == 2
        named = mlflow.search_traces(
            locations=[experiment_id], filter_string="trace.name = 'manual'", return_type="list"
        )
        assert [t.info.tags["mlflow.traceName"] for t in named] == ["manual"]
        text = mlflow.search_traces(
            locations=[experiment_id],
            filter_string="trace.text LIKE '%2 docs say yes%'",
            return_type="list",
        )
        assert len(text) == 2
    _no_warnings(client_warnings)
    if store["kind"] == "azurite":
        _assert_span_files_in_container(store, experiment_id)


def _assert_span_files_in_container(store: dict[str, Any], experiment_id: str) -> None:
    from azure.storage.blob import BlobServiceClient

    azurite = store["azurite"]
    with BlobServiceClient.from_connection_string(azurite.connection_string) as blobs:
        container = blobs.get_container_client(store["container"])
        names = [b.name for b in container.list_blobs(name_starts_with=f"store/{experiment_id}/")]
    spans = [n for n in names if "/traces/" in n and "/spans/" in n and n.endswith(".jsonl")]
    assert spans, names


def test_assessments_and_delete(store: dict[str, Any], client_warnings: Any) -> None:
    server: TetherServer = store["server"]
    with tracking_to(server.url):
        experiment_id = mlflow.set_experiment(unique_name("assess")).experiment_id
        answer("rate me")
        _flush()
        trace_id = mlflow.get_last_active_trace_id()
        assert trace_id
        _wait_for(lambda: mlflow.get_trace(trace_id), "the trace")
        feedback = mlflow.log_feedback(
            trace_id=trace_id, name="quality", value=0.75, rationale="fine", metadata={"k": "v"}
        )
        expectation = mlflow.log_expectation(trace_id=trace_id, name="expected", value={"a": 1})
        trace = mlflow.get_trace(trace_id)
        got = {a.name: a for a in trace.info.assessments}
        assert got["quality"].value == 0.75 and got["quality"].rationale == "fine"
        assert got["expected"].value == {"a": 1}
        updated = mlflow.update_assessment(
            trace_id=trace_id,
            assessment_id=feedback.assessment_id,
            assessment=mlflow.entities.Feedback(name="quality", value=0.25),
        )
        assert updated.value == 0.25
        assert mlflow.get_assessment(trace_id, feedback.assessment_id).value == 0.25
        mlflow.delete_assessment(trace_id=trace_id, assessment_id=expectation.assessment_id)
        remaining = mlflow.get_trace(trace_id).info.assessments
        assert [a.name for a in remaining] == ["quality"]
        scored = mlflow.search_traces(
            locations=[experiment_id], filter_string="feedback.quality < 0.5", return_type="list"
        )
        assert [t.info.trace_id for t in scored] == [trace_id]
        client = MlflowClient()
        deleted = client.delete_traces(experiment_id, trace_ids=[trace_id])
        assert deleted == 1
        assert mlflow.search_traces(locations=[experiment_id], return_type="list") == []
        answer("old one")
        _flush()
        _wait_for(lambda: mlflow.search_traces(locations=[experiment_id]).shape[0] == 1, "trace")
        by_age = client.delete_traces(
            experiment_id, max_timestamp_millis=int(time.time() * 1000) + 1000, max_traces=10
        )
        assert by_age == 1
    _no_warnings(client_warnings)


class _FakeOpenAI(BaseHTTPRequestHandler):
    """`POST /v1/chat/completions`: a fixed completion with token usage."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        request = json.loads(self.rfile.read(length))
        body = json.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": request.get("model", "gpt-test"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Paris."},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_openai() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_openai_autolog(store: dict[str, Any], fake_openai: str, client_warnings: Any) -> None:
    openai = pytest.importorskip("openai")
    server: TetherServer = store["server"]
    with tracking_to(server.url):
        experiment_id = mlflow.set_experiment(unique_name("autolog")).experiment_id
        mlflow.openai.autolog()
        try:
            llm = openai.OpenAI(base_url=fake_openai, api_key="test-key")

            @mlflow.trace
            def ask(question: str) -> str:
                reply = llm.chat.completions.create(
                    model="gpt-test", messages=[{"role": "user", "content": question}]
                )
                return str(reply.choices[0].message.content)

            assert ask("Capital of France?") == "Paris."
            _flush()
            trace = _wait_for(
                lambda: (
                    (t := mlflow.search_traces(locations=[experiment_id], return_type="list"))
                    and len(t[0].data.spans) == 2
                    and t[0]
                ),
                "the autologged trace",
            )
        finally:
            mlflow.openai.autolog(disable=True)
        llm_span = next(s for s in trace.data.spans if s.span_type == "CHAT_MODEL")
        assert llm_span.inputs["messages"][0]["content"] == "Capital of France?"
        usage = json.loads(trace.info.trace_metadata["mlflow.trace.tokenUsage"])
        assert usage == {"input_tokens": 11, "output_tokens": 2, "total_tokens": 13}
        assert json.loads(trace.info.request_preview) == {"question": "Capital of France?"}
    _no_warnings(client_warnings)


def test_opentelemetry_sdk_exports_to_tether(store: dict[str, Any]) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    server: TetherServer = store["server"]
    with tracking_to(server.url):
        experiment_id = mlflow.create_experiment(unique_name("otel"))
        provider = TracerProvider(resource=Resource.create({"service.name": "my-agent"}))
        exporter = OTLPSpanExporter(
            endpoint=f"{server.url}/v1/traces",
            headers={"x-mlflow-experiment-id": experiment_id},
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("agent-run") as root:
            root.set_attribute("input.value", "hi")
            with tracer.start_as_current_span("tool-call") as child:
                child.set_attribute("tool.name", "search")
            trace_hex = format(root.get_span_context().trace_id, "032x")
        provider.shutdown()
        trace = mlflow.get_trace(f"tr-{trace_hex}")
        assert sorted(s.name for s in trace.data.spans) == ["agent-run", "tool-call"]
        assert trace.info.state.value == "OK"
        assert trace.info.tags["service.name"] == "my-agent"
        found = mlflow.search_traces(locations=[experiment_id], return_type="list")
        assert [t.info.trace_id for t in found] == [f"tr-{trace_hex}"]


def test_mlflow2_client_traces(store: dict[str, Any], mlflow2: Any) -> None:
    """MLflow 2.x clients use the v2 routes and upload `traces.json` themselves."""
    server: TetherServer = store["server"]
    snippet = """
import mlflow
mlflow.set_experiment("EXP")

@mlflow.trace
def add(a, b):
    with mlflow.start_span("inner") as span:
        span.set_inputs({"a": a})
    return a + b

add(1, 2)
trace_id = mlflow.get_last_active_trace().info.request_id
trace = mlflow.get_trace(trace_id)
result = {
    "id": trace_id,
    "spans": sorted(s.name for s in trace.data.spans),
    "status": getattr(trace.info.status, "value", str(trace.info.status)),
    "found": len(mlflow.search_traces()),
}
""".replace("EXP", unique_name("mlflow2"))
    result = mlflow2.run(server.url, snippet)
    assert result["spans"] == ["add", "inner"]
    assert result["status"] == "OK"
    assert result["found"] == 1
    with server.rest() as rest:
        data = rest.get("/ajax-api/2.0/mlflow/get-trace-artifact", {"request_id": result["id"]})
    assert data.status == 200
    assert sorted(s["name"] for s in json.loads(data.text)["spans"]) == ["add", "inner"]
