"""Aggregate samples over rounds and render the Markdown table."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.workloads import Sample


@dataclass
class Row:
    workload: str
    unit: str
    server: str
    throughput: float  # median over rounds
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mb: float  # after the workload, last round
    hwm_mb: float


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summarize(
    workload: str, unit: str, server: str, samples: list[Sample], mem: tuple[int, int]
) -> Row:
    latencies = [x for s in samples for x in s.latencies]
    return Row(
        workload=workload,
        unit=unit,
        server=server,
        throughput=statistics.median(s.throughput for s in samples) if samples else 0.0,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        errors=sum(s.errors for s in samples),
        rss_mb=mem[0] / 1024,
        hwm_mb=mem[1] / 1024,
    )


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _cell(row: Row | None) -> str:
    if row is None:
        return "-"
    err = f" ({row.errors} err)" if row.errors else ""
    return f"{_fmt(row.throughput)}{err}"


def _latency(row: Row | None) -> str:
    return "-" if row is None else f"{row.p50_ms:.1f} / {row.p99_ms:.1f}"


def _ratio(target: Row | None, reference: Row | None) -> str:
    if target is None or reference is None or reference.throughput <= 0:
        return "-"
    return f"{target.throughput / reference.throughput:.2f}x"


def markdown(
    rows: list[Row], servers: list[str], idle: dict[str, int], reference: str = "mlflow"
) -> str:
    by_key = {(r.workload, r.server): r for r in rows}
    workloads = list(dict.fromkeys((r.workload, r.unit) for r in rows))
    others = [s for s in servers if s != reference]
    head = ["workload", "unit"]
    head += [f"{s} thr" for s in servers]
    head += [f"{s} p50/p99 ms" for s in servers]
    head += [f"{s} / {reference}" for s in others]
    head += [f"{s} RSS / peak MB" for s in servers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, unit in workloads:
        cells = [name, unit]
        cells += [_cell(by_key.get((name, s))) for s in servers]
        cells += [_latency(by_key.get((name, s))) for s in servers]
        cells += [_ratio(by_key.get((name, s)), by_key.get((name, reference))) for s in others]
        for s in servers:
            row = by_key.get((name, s))
            cells.append("-" if row is None else f"{row.rss_mb:.0f} / {row.hwm_mb:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    idle_cells = " · ".join(f"{s} {idle.get(s, 0) / 1024:.0f} MB" for s in servers)
    lines.append("")
    lines.append(f"Idle RSS after startup (process tree): {idle_cells}")
    return "\n".join(lines)


def raw_json(
    samples: dict[tuple[str, str], list[Sample]], rows: list[Row], idle: dict[str, int]
) -> dict[str, Any]:
    return {
        "idle_rss_kb": idle,
        "summary": [r.__dict__ for r in rows],
        "samples": [
            {
                "workload": w,
                "server": s,
                "rounds": [
                    {
                        "units": x.units,
                        "elapsed": x.elapsed,
                        "throughput": x.throughput,
                        "requests": len(x.latencies),
                        "errors": x.errors,
                        "p50_ms": percentile(x.latencies, 0.5) * 1000,
                        "p99_ms": percentile(x.latencies, 0.99) * 1000,
                    }
                    for x in xs
                ],
            }
            for (w, s), xs in samples.items()
        ],
    }
