"""`compat.diff` extended to traces: the REST routes of MLflow 3's tracing API sent to the
reference `mlflow server` and to Tether, answers compared after normalising what is
legitimately generated per server:

- experiment ids (also inside `mlflow.artifactLocation` tags and artifact URIs);
- v2 request ids (`uuid4().hex`) and assessment ids (`a-<32 hex>`): symbols;
- server-assigned times: an assessment's `last_update_time` (a timestamp string);
- v2 `request_metadata` and trace `tags` lists: sorted by key (v3 maps compare as dicts).

Trace ids of the v3 API are chosen by the client, so tests send the same ids to both servers.
OTLP bodies (`otlp_request`) are built here from plain span descriptions.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from compat.diff import Normaliser, Outcome, Pair, Ref, Side, substitute
from support import MlflowRest, RestResponse
from support.compare import differences

ASSESSMENT_ID = re.compile(r"a-[0-9a-f]{32}")
_TRACE_LOCATION = re.compile(r"(?P<root>.*?)/(?P<exp>\d+)/traces/(?P<trace>[^/]+)/artifacts")
V3 = "/api/3.0/mlflow"


class TraceNormaliser(Normaliser):
    def _dict(self, value: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        kept = {}
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "last_update_time" and isinstance(item, str):
                out[key] = "<ts>"
            else:
                kept[key] = item
        out.update(super()._dict(kept, path))
        return out

    def _list_order(self, items: list[Any], path: tuple[str, ...]) -> list[Any]:
        # v2 key/value lists: clients read them into dicts, so their order carries nothing
        # (MLflow lists a trace's tags in its rows' order, Tether by key).
        if path and path[-1] in ("request_metadata", "tags"):
            return sorted(items, key=lambda i: json.dumps(i, sort_keys=True))
        return super()._list_order(items, path)

    def _string(self, value: str, key: str) -> str:
        # A trace's artifact location, wherever it shows (a v3 tag map, a v2 tag list).
        if match := _TRACE_LOCATION.fullmatch(value):
            exp = self.side.symbol_for(match["exp"], "exp")
            trace = self.side.lookup(match["trace"])  # v2 request ids are per server
            return f"{match['root']}/{exp}/traces/{trace}/artifacts"
        value = ASSESSMENT_ID.sub(lambda m: self.side.symbol_for(m.group(0), "assessment"), value)
        return super()._string(value, key)


def new_trace_id() -> str:
    return "tr-" + uuid.uuid4().hex


def trace_info(
    trace_id: str,
    experiment: Ref | str,
    *,
    request_time: str = "2026-01-02T03:04:05.678Z",
    execution_duration: str | None = "1.500s",
    state: str = "OK",
    metadata: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A `StartTraceV3` body."""
    info: dict[str, Any] = {
        "trace_id": trace_id,
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": {"experiment_id": experiment},
        },
        "request_time": request_time,
        "state": state,
        "trace_metadata": dict(metadata or {}),
        "tags": dict(tags or {}),
        **extra,
    }
    if execution_duration is not None:
        info["execution_duration"] = execution_duration
    return {"trace": {"trace_info": info}}


@dataclass
class SpanSpec:
    """One OTLP span: ids are hex (32 for the trace, 16 for spans)."""

    trace_hex: str
    span_hex: str
    name: str
    start_ns: int
    end_ns: int
    parent_hex: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    status: int = 1  # STATUS_CODE_OK
    message: str = ""
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)


def _any(value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    out = AnyValue()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, list):
        out.array_value.values.extend(_any(v) for v in value)
    elif isinstance(value, dict):
        for k, v in value.items():
            kv = out.kvlist_value.values.add()
            kv.key = k
            kv.value.CopyFrom(_any(v))
    return out


def otlp_request(spans: Sequence[SpanSpec], resource: Mapping[str, Any] | None = None) -> bytes:
    """An `ExportTraceServiceRequest` in protobuf."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for key, value in (resource or {}).items():
        attr = resource_spans.resource.attributes.add()
        attr.key = key
        attr.value.CopyFrom(_any(value))
    scope = resource_spans.scope_spans.add()
    for spec in spans:
        span = scope.spans.add()
        span.trace_id = bytes.fromhex(spec.trace_hex)
        span.span_id = bytes.fromhex(spec.span_hex)
        if spec.parent_hex:
            span.parent_span_id = bytes.fromhex(spec.parent_hex)
        span.name = spec.name
        span.start_time_unix_nano = spec.start_ns
        span.end_time_unix_nano = spec.end_ns
        span.status.code = spec.status  # type: ignore[assignment]
        if spec.message:
            span.status.message = spec.message
        for key, value in spec.attributes.items():
            attr = span.attributes.add()
            attr.key = key
            attr.value.CopyFrom(_any(value))
        for name, time_ns, attrs in spec.events:
            event = span.events.add()
            event.name = name
            event.time_unix_nano = time_ns
            for key, value in attrs.items():
                attr = event.attributes.add()
                attr.key = key
                attr.value.CopyFrom(_any(value))
    return request.SerializeToString()


class TracePair(Pair):
    def __init__(self, ref: MlflowRest, tet: MlflowRest) -> None:
        super().__init__(ref, tet)
        self.sides = {"ref": Side("ref"), "tet": Side("tet")}
        self.norm = {name: TraceNormaliser(side) for name, side in self.sides.items()}

    def v3(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Outcome:
        return self.send(method, V3 + path if path.startswith("/") else f"{V3}/{path}", body)

    def same3(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        status: int | None = None,
    ) -> Any:
        out = self.v3(method, path, body)
        assert_same(out, status)
        return out.tet_body

    def same(
        self,
        method: str,
        path: Any,
        body: Mapping[str, Any] | None = None,
        *,
        status: int | None = None,
    ) -> Any:
        out = self.send(method, path, body)
        assert_same(out, status)
        return out.tet_body

    def v3_each(self, method: str, path: str, make: Callable[[str], Mapping[str, Any]]) -> Outcome:
        """One request whose body differs per side (`make("ref")`, `make("tet")`): e.g. a
        filter naming a run id."""
        url = V3 + path if path.startswith("/") else f"{V3}/{path}"
        answers = {}
        for name, rest in self.rest.items():
            body = dict(substitute(dict(make(name)), name))
            answers[name] = rest.request(method, url, json=body)
        return self._outcome(answers)

    def start(self, experiment: Ref, trace_id: str | None = None, **kwargs: Any) -> str:
        trace_id = trace_id or new_trace_id()
        out = self.v3("POST", "traces", trace_info(trace_id, experiment, **kwargs))
        assert out.ref.status == out.tet.status == 200, (out.ref.json, out.tet.json)
        return trace_id

    def otlp(
        self,
        experiment: Ref | str,
        body: bytes,
        *,
        content_type: str = "application/x-protobuf",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[RestResponse, RestResponse]:
        """POST one OTLP body to both (each with its own experiment id header)."""
        answers = []
        for name, rest in self.rest.items():
            sent = {"content-type": content_type, **(headers or {})}
            if experiment is not None:
                sent["x-mlflow-experiment-id"] = str(substitute(experiment, name))
            answers.append(rest.request("POST", "/v1/traces", content=body, headers=sent))
        return answers[0], answers[1]

    def assessment(self, trace_id: str, body: Mapping[str, Any]) -> Ref:
        out = self.v3("POST", f"traces/{trace_id}/assessments", {"assessment": body})
        assert out.ref.status == out.tet.status == 200, (out.ref.json, out.tet.json)
        return self.register(
            "assessment",
            out.ref.json["assessment"]["assessment_id"],
            out.tet.json["assessment"]["assessment_id"],
        )


def assert_same(out: Outcome, status: int | None = None) -> None:
    """Both answered the same status and normalised body; the differences listed if not."""
    diffs = differences(out.tet_body, out.ref_body)
    assert out.ref.status == out.tet.status and not diffs, (
        f"reference {out.ref.status}, Tether {out.tet.status}:\n" + "\n".join(diffs[:30])
    )
    if status is not None:
        assert out.tet.status == status, out.tet.json
