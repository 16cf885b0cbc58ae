"""Spans in their three shapes: OTLP protobuf (what `/v1/traces` receives), MLflow's span dict
(what `traces.json` and Tether's span segments hold, one JSON line per span), and OTLP's
proto3 JSON (what `traces/get` and `traces/batchGet` answer).

The conversions are MLflow 3.17's (`Span.from_otel_proto`, `Span.to_dict`, the storing
sanitation of `translate_span_when_storing`, `Span.to_otel_proto`):
- every span attribute is stored as the JSON text of its value (`json.dumps`, non-ASCII kept),
  and `mlflow.traceRequestId` is derived from the OTLP trace id, never trusted from the client;
  a value that arrived JSON-encoded twice loses one layer (MLflow's `sanitize_attributes`);
- event attributes keep their plain values; byte values of links become base64 text;
- the stored line is `json.dumps(span_dict, ensure_ascii=False)`, byte for byte what MLflow's
  SQL store keeps as a span's `content`, so `trace.text LIKE` matches the same spans.
MLflow's translations of third-party semantic conventions (OpenInference, GenAI semconv, ...)
into MLflow attributes are not applied (see the README's "Traces").
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus

REQUEST_ID_ATTRIBUTE = "mlflow.traceRequestId"
SPAN_TYPE_ATTRIBUTE = "mlflow.spanType"
INPUTS_ATTRIBUTE = "mlflow.spanInputs"
OUTPUTS_ATTRIBUTE = "mlflow.spanOutputs"
TRACE_TAG_PREFIX = "mlflow.traceTag."
SESSION_ATTRIBUTES = ("session.id", "gen_ai.conversation.id")

_STATUS_NAMES = {
    ProtoStatus.STATUS_CODE_OK: ("OK", "STATUS_CODE_OK"),
    ProtoStatus.STATUS_CODE_ERROR: ("ERROR", "STATUS_CODE_ERROR"),
}
_UNSET = ("UNSET", "STATUS_CODE_UNSET")
_STATUS_BY_DICT_NAME = {"STATUS_CODE_OK": "OK", "STATUS_CODE_ERROR": "ERROR"}


@dataclass(frozen=True)
class StoredSpan:
    """One span as Tether stores it: its index fields and its content line."""

    trace_id: str  # MLflow's "tr-<32 hex>"
    span_id: str  # 16 hex
    parent_span_id: str | None
    name: str
    span_type: str | None
    status: str  # OK | ERROR | UNSET
    start_time_ns: int
    end_time_ns: int | None
    attributes: dict[str, str]  # as stored: JSON text per value
    line: bytes  # the span dict's JSON, UTF-8, no newline

    @property
    def is_root(self) -> bool:
        return self.parent_span_id is None


def mlflow_trace_id(otel_trace_id: bytes) -> str:
    return "tr-" + int.from_bytes(otel_trace_id, "big").to_bytes(16, "big").hex()


def _span_hex(raw: bytes) -> str:
    return int.from_bytes(raw, "big").to_bytes(8, "big").hex()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def decode_any(value: AnyValue) -> Any:
    """An OTLP AnyValue as the plain value it holds (None when unset)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [decode_any(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: decode_any(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def dump_value(value: Any) -> str:
    """A span attribute's stored text: `json.dumps`, non-ASCII kept, other objects as str."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _sanitized(attributes: dict[str, str]) -> dict[str, str]:
    """One layer off values that arrived JSON-encoded twice: a stored text that decodes to a
    string which itself decodes to a string, object or array (MLflow's `sanitize_attributes`)."""
    out: dict[str, str] = {}
    for key, text in attributes.items():
        try:
            once = json.loads(text)
        except (ValueError, TypeError):
            out[key] = text
            continue
        if isinstance(once, str):
            try:
                if isinstance(json.loads(once), str | dict | list):
                    out[key] = once
                    continue
            except ValueError:
                pass
        out[key] = text
    return out


def _loaded(text: str | None) -> Any:
    """A stored attribute's value (MLflow's `Span.get_attribute`): its JSON, or the text as is
    when it is not JSON; None for a missing or empty one."""
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def from_otlp(proto: ProtoSpan, service_name: str | None = None) -> StoredSpan:
    """An OTLP span as stored. Raises ValueError when it has no trace or span id."""
    if not proto.trace_id:
        raise ValueError("trace_id is required but was empty")
    if not proto.span_id:
        raise ValueError("span_id is required but was empty")
    trace_id = mlflow_trace_id(proto.trace_id)
    parent = _span_hex(proto.parent_span_id) if proto.parent_span_id else None
    attributes = {a.key: dump_value(decode_any(a.value)) for a in proto.attributes}
    attributes[REQUEST_ID_ATTRIBUTE] = dump_value(trace_id)
    if parent is None and service_name is not None:
        attributes["service.name"] = dump_value(service_name)
    status, status_name = _STATUS_NAMES.get(proto.status.code, _UNSET)
    # OpenTelemetry keeps a status description only with an ERROR status.
    message = proto.status.message if status == "ERROR" else ""
    span_dict = {
        "trace_id": _b64(int.from_bytes(proto.trace_id, "big").to_bytes(16, "big")),
        "span_id": _b64(int.from_bytes(proto.span_id, "big").to_bytes(8, "big")),
        "parent_span_id": _b64(bytes.fromhex(parent)) if parent else None,
        "name": proto.name,
        "start_time_unix_nano": proto.start_time_unix_nano,
        "end_time_unix_nano": proto.end_time_unix_nano,
        "events": [
            {
                "name": event.name,
                "time_unix_nano": event.time_unix_nano,
                "attributes": {a.key: decode_any(a.value) for a in event.attributes},
            }
            for event in proto.events
        ],
        "status": {"code": status_name, "message": message},
        "attributes": _sanitized(attributes),
        "links": [_link(link) for link in proto.links],
    }
    line = json.dumps(span_dict, ensure_ascii=False, default=str).encode("utf-8")
    span_type = _loaded(attributes.get(SPAN_TYPE_ATTRIBUTE))
    return StoredSpan(
        trace_id=trace_id,
        span_id=_span_hex(proto.span_id),
        parent_span_id=parent,
        name=proto.name,
        span_type=None if span_type is None else str(span_type),
        status=status,
        start_time_ns=proto.start_time_unix_nano,
        end_time_ns=proto.end_time_unix_nano,
        attributes=span_dict["attributes"],  # type: ignore[arg-type]
        line=line,
    )


def _link(link: ProtoSpan.Link) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for attr in link.attributes:
        value = decode_any(attr.value)
        attributes[attr.key] = _b64(value) if isinstance(value, bytes) else value
    return {
        "trace_id": mlflow_trace_id(link.trace_id),
        "span_id": _span_hex(link.span_id),
        "attributes": attributes or None,
    }


# Stored line -> OTLP proto3 JSON ---------------------------------------------------------------


def _any_json(value: Any) -> dict[str, Any]:
    """A plain value as OTLP AnyValue JSON (MLflow's `_set_otel_proto_anyvalue`)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"bool_value": value}
    if isinstance(value, str):
        return {"string_value": value}
    if isinstance(value, int):
        return {"int_value": value}
    if isinstance(value, float):
        return {"double_value": value}
    if isinstance(value, list | tuple):
        return {"array_value": {"values": [_any_json(v) for v in value]}} if value else _EMPTY_ARRAY
    if isinstance(value, dict):
        if not value:
            return _EMPTY_KVLIST
        return {"kvlist_value": {"values": [_key_value(str(k), v) for k, v in value.items()]}}
    return {"string_value": str(value)}


_EMPTY_ARRAY: dict[str, Any] = {"array_value": {}}
_EMPTY_KVLIST: dict[str, Any] = {"kvlist_value": {}}


def _key_value(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "value": _any_json(value)}


def _hex_b64(hex_id: str, size: int) -> str:
    return _b64(int(hex_id, 16).to_bytes(size, "big"))


def otlp_json(span: dict[str, Any]) -> dict[str, Any]:
    """A stored span dict as the OTLP Span JSON MLflow's trace endpoints answer."""
    out: dict[str, Any] = {"trace_id": span["trace_id"], "span_id": span["span_id"]}
    if span.get("parent_span_id"):
        out["parent_span_id"] = span["parent_span_id"]
    if span.get("name"):
        out["name"] = span["name"]
    if span.get("start_time_unix_nano"):  # proto3 JSON leaves zero values out
        out["start_time_unix_nano"] = int(span["start_time_unix_nano"])
    if span.get("end_time_unix_nano"):
        out["end_time_unix_nano"] = int(span["end_time_unix_nano"])
    attributes = span.get("attributes") or {}
    if attributes:
        out["attributes"] = [_key_value(k, _loaded(v)) for k, v in attributes.items()]
    events = [
        _event_json(e) for e in span.get("events") or [] if isinstance(e, dict) and "name" in e
    ]
    if events:
        out["events"] = events
    links = [_link_json(link) for link in span.get("links") or []]
    if links:
        out["links"] = links
    status = span.get("status") or {}
    code = _STATUS_BY_DICT_NAME.get(status.get("code", ""), status.get("code"))
    status_json: dict[str, Any] = {}
    if code in ("OK", "ERROR"):
        status_json["code"] = f"STATUS_CODE_{code}"
    if status.get("message"):
        status_json["message"] = status["message"]
    out["status"] = status_json
    return out


def _event_json(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if event.get("time_unix_nano"):
        out["time_unix_nano"] = int(event["time_unix_nano"])
    if event.get("name"):
        out["name"] = event["name"]
    attributes = event.get("attributes") or {}
    if attributes:
        out["attributes"] = [_key_value(k, v) for k, v in attributes.items()]
    return out


def _link_json(link: dict[str, Any]) -> dict[str, Any]:
    trace_hex = str(link.get("trace_id", "")).rsplit("/", 1)[-1].removeprefix("tr-")
    out: dict[str, Any] = {
        "trace_id": _hex_b64(trace_hex, 16),
        "span_id": _hex_b64(str(link.get("span_id", "")), 8),
    }
    attributes = link.get("attributes") or {}
    if attributes:
        out["attributes"] = [_key_value(k, v) for k, v in attributes.items()]
    return out
