"""The sync page's HTML: plain server-rendered markup, no script, readable on a phone.

On narrow screens (under 700 px) every table row becomes a card whose cells carry their
column name (`data-label`), so nothing scrolls sideways. Every value from the store is
escaped. Links are relative (`../#/experiments/...` into the MLflow UI), so the page works
under `--static-prefix` too.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote, urlencode

from tether.clock import now_ms
from tether.deploy.schemas import DeploymentView
from tether.sync.schemas import SyncSummary
from tether.ui.sync_page.data import BUCKETS, Listing, Page, Row
from tether.ui.sync_page.studio import Studio

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1f272d;
background:#f7f8fa;line-height:1.4}
header{background:#0e1e2b;color:#fff;padding:.8rem 1rem}
header a{color:#9cd0ff}
main{padding:1rem;max-width:80rem;margin:auto}
h1{font-size:1.3rem;margin:0}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
.facts{display:flex;flex-wrap:wrap;gap:.5rem}
.fact{background:#fff;border:1px solid #dde2e7;border-radius:6px;padding:.5rem .8rem}
.fact b{display:block;font-size:1.2rem}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde2e7}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #eef0f2;vertical-align:top;
overflow-wrap:anywhere}
th{background:#f0f2f5;font-weight:600}
.status{display:inline-block;border-radius:10px;padding:0 .5rem;font-size:.85rem}
.synced{background:#d9f2e3;color:#145c32}.pending,.in_flight{background:#fff3cd;color:#6b5200}
.failed{background:#ffe2cc;color:#8a3b00}.dead{background:#fbd5d5;color:#8a1010}
.error{font-family:ui-monospace,monospace;font-size:.8rem;white-space:pre-wrap}
form{display:inline}
button{font:inherit;padding:.3rem .8rem;border-radius:5px;border:1px solid #8a1010;
background:#fff;color:#8a1010;cursor:pointer}
.note{color:#5f6b76;font-size:.9rem}
.filters a{margin-right:.6rem}
.banner{background:#d9f2e3;border:1px solid #9fd9b5;padding:.5rem .8rem;border-radius:6px}
@media (max-width:700px){
table,thead,tbody,tr,th,td{display:block}thead{display:none}
tr{margin-bottom:.7rem;border:1px solid #dde2e7;border-radius:6px;background:#fff}
td{border:0;padding:.25rem .6rem}
td::before{content:attr(data-label);display:block;font-size:.75rem;color:#5f6b76}
}
"""


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _status(bucket: str) -> str:
    return f'<span class="status {escape(bucket)}">{escape(bucket.replace("_", " "))}</span>'


def _retry_form(key: str) -> str:
    return (
        '<form method="post" action="retry">'
        f'<input type="hidden" name="entity" value="{escape(key)}">'
        f'<button type="submit" aria-label="Retry {escape(key)}">Retry</button></form>'
    )


def _cell(label: str, content: str) -> str:
    return f'<td data-label="{escape(label)}">{content}</td>'


def _error(row: Row) -> str:
    parts = []
    if row.last_error:
        parts.append(f'<div class="error">{escape(row.last_error)}</div>')
    if row.waiting_on:
        parts.append(f"waits for {escape(row.waiting_on)}")
    return "".join(parts) or "-"


def _experiment_rows(listing: Listing, studio: Studio | None) -> str:
    lines = []
    for row in listing.rows:
        label = escape(row.name or row.entity_id)
        ui = f'<a href="../#/experiments/{quote(row.entity_id)}">{label}</a>'
        azure = "-"
        if row.azure_id and studio is not None:
            azure = f'<a href="{escape(studio.experiment(row.azure_id))}">open in studio</a>'
        lines.append(
            "<tr>"
            + _cell("Experiment", ui)
            + _cell("Sync", _status(row.status))
            + _cell("Oldest unsynced write", _age(row.pending_for_seconds))
            + _cell("Last error", _error(row))
            + _cell("Azure ML", azure)
            + _cell("", _retry_form(row.key) if row.status == "dead" else "")
            + "</tr>"
        )
    return "".join(lines)


def _run_rows(listing: Listing, studio: Studio | None) -> str:
    lines = []
    for row in listing.rows:
        label = escape(row.name or row.entity_id)
        if row.experiment_id is not None:
            link = f"../#/experiments/{quote(row.experiment_id)}/runs/{quote(row.entity_id)}"
            ui = f'<a href="{link}">{label}</a>'
        else:
            ui = f"{label} (deleted here)"
        azure = "-"
        if row.azure_id and studio is not None:
            azure = f'<a href="{escape(studio.run(row.azure_id))}">open in studio</a>'
        lines.append(
            "<tr>"
            + _cell("Run", f'{ui}<div class="note">{escape(row.entity_id)}</div>')
            + _cell("Experiment", escape(row.experiment_id or "-"))
            + _cell("Sync", _status(row.status))
            + _cell("Oldest unsynced write", _age(row.pending_for_seconds))
            + _cell("Attempts", str(row.attempts))
            + _cell("Last error", _error(row))
            + _cell("Azure ML", azure)
            + _cell("", _retry_form(row.key) if row.status == "dead" else "")
            + "</tr>"
        )
    return "".join(lines)


def _problem_rows(listing: Listing) -> str:
    return "".join(
        "<tr>"
        + _cell("Entity", escape(row.key))
        + _cell("Sync", _status(row.status))
        + _cell("Attempts", str(row.attempts))
        + _cell("Last error", _error(row))
        + _cell("", _retry_form(row.key) if row.status == "dead" else "retried automatically")
        + "</tr>"
        for row in listing.rows
    )


def _table(headers: list[str], body: str, listing: Listing, empty: str) -> str:
    if not listing.rows:
        return f'<p class="note">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    more = ""
    if listing.total > len(listing.rows):
        shown = len(listing.rows)
        more = f'<p class="note">Showing the {shown} most recently changed of {listing.total}.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _deployments(rows: list[DeploymentView]) -> str:
    """Deployments to Azure ML online endpoints: state, model, sizing, age, last error."""
    if not rows:
        return (
            '<p class="note">No deployment (<code>mlflow deployments create -t tether</code>).</p>'
        )
    now = now_ms()
    css = {"READY": "synced", "FAILED": "dead", "DELETED": "synced"}
    body = "".join(
        "<tr>"
        + _cell("Deployment", escape(f"{d['name']} (endpoint {d['endpoint']})"))
        + _cell(
            "State",
            f'<span class="status {css.get(d["state"], "pending")}">{escape(d["state"])}</span>',
        )
        + _cell("Model", escape(d["model_uri"]))
        + _cell("Instances", escape(f"{d['instance_count']} x {d['instance_type']}"))
        + _cell("Age", _age((now - d["created_at"]) / 1000))
        + _cell("Last error", f'<span class="error">{escape(d.get("error", ""))}</span>')
        + "</tr>"
        for d in rows
    )
    head = "".join(
        f"<th>{h}</th>" for h in ("Deployment", "State", "Model", "Instances", "Age", "Last error")
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _filters(status: str | None, experiment: str | None) -> str:
    links = []
    for choice in (None, *BUCKETS):
        query = {k: v for k, v in (("status", choice), ("experiment", experiment)) if v}
        href = "./" + (f"?{urlencode(query)}" if query else "")
        text = escape((choice or "all").replace("_", " "))
        links.append(f"<b>{text}</b>" if choice == status else f'<a href="{href}">{text}</a>')
    return '<p class="filters">Show: ' + " ".join(links) + "</p>"


def _workspaces(summary: SyncSummary) -> str:
    """One row per MLflow workspace (its own Azure ML workspace, or kept local); nothing
    while `default` is the only one."""
    each = summary.get("workspaces") or {}
    if list(each) in ([], ["default"]):
        return ""
    rows = "".join(
        "<tr>"
        + _cell("Workspace", escape(name))
        + _cell("Azure ML", escape(one["azureml_workspace"] or "kept in Tether only"))
        + "".join(_cell(b.replace("_", " "), str(one["entities"].get(b, 0))) for b in BUCKETS)
        + _cell("Oldest unsynced write", _age(one["oldest_pending_age_seconds"]))
        + "</tr>"
        for name, one in each.items()
    )
    head = "".join(f"<th>{escape(b.replace('_', ' '))}</th>" for b in BUCKETS)
    return (
        "<h2>By workspace</h2><table><thead><tr><th>Workspace</th><th>Azure ML</th>"
        f"{head}<th>Oldest unsynced write</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def render(
    page: Page,
    *,
    enabled: bool,
    workspace: str | None,
    studio: Studio | None,
    status: str | None,
    experiment: str | None,
    notice: str | None,
    deployments: list[DeploymentView] | None = None,
) -> str:
    summary = page.summary
    totals = summary["entities"]
    outbox = summary["outbox"]
    if enabled:
        state = f"Sync is on, into {escape(workspace or '')}."
    else:
        state = (
            "Sync is off (no <code>--azureml-workspace</code>): writes wait in the outbox "
            "and are delivered once a workspace is configured."
        )
    facts = "".join(
        f'<div class="fact"><b>{totals[b]}</b>{escape(b.replace("_", " "))}</div>' for b in BUCKETS
    )
    facts += (
        f'<div class="fact"><b>{_age(summary["oldest_pending_age_seconds"])}</b>'
        "oldest unsynced write</div>"
        f'<div class="fact"><b>{outbox["not_scanned"]}</b>writes not yet picked up</div>'
    )
    by_type = "".join(
        "<tr>"
        + _cell("Type", escape(kind))
        + "".join(_cell(b.replace("_", " "), str(counts.get(b, 0))) for b in BUCKETS)
        + "</tr>"
        for kind, counts in sorted(summary["by_type"].items())
    )
    by_type_table = (
        "<table><thead><tr><th>Type</th>"
        + "".join(f"<th>{escape(b.replace('_', ' '))}</th>" for b in BUCKETS)
        + f"</tr></thead><tbody>{by_type}</tbody></table>"
        if by_type
        else '<p class="note">Nothing has been discovered for sync yet.</p>'
    )
    retry_all = ""
    if totals["dead"]:
        retry_all = (
            '<form method="post" action="retry"><input type="hidden" name="all" value="dead">'
            '<button type="submit">Retry all dead</button></form>'
        )
    banner = f'<p class="banner" role="status">{escape(notice)}</p>' if notice else ""
    scope = f" in experiment {escape(experiment)}" if experiment else ""
    problems = _table(
        ["Entity", "Sync", "Attempts", "Last error", ""],
        _problem_rows(page.problems),
        page.problems,
        "No failed or dead entity.",
    )
    experiments = _table(
        ["Experiment", "Sync", "Oldest unsynced write", "Last error", "Azure ML", ""],
        _experiment_rows(page.experiments, studio),
        page.experiments,
        "No experiment in this view.",
    )
    runs = _table(
        [
            *("Run", "Experiment", "Sync", "Oldest unsynced write"),
            *("Attempts", "Last error", "Azure ML", ""),
        ],
        _run_rows(page.runs, studio),
        page.runs,
        "No run in this view.",
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tether: sync to Azure ML</title><style>{_CSS}</style></head>
<body>
<header><h1>Sync to Azure ML</h1>
<div><a href="../">MLflow UI</a> · <a href="./">refresh</a></div></header>
<main>
{banner}
<p>{state}</p>
<div class="facts">{facts}</div>
{_workspaces(summary)}
<h2>By type</h2>
{by_type_table}
<h2>Deployments to online endpoints</h2>
{_deployments(deployments or [])}
<h2>Needs attention</h2>
{retry_all}
{problems}
{_filters(status, experiment)}
<h2>Experiments{scope}</h2>
{experiments}
<h2>Runs{scope}</h2>
{runs}
<p class="note">The same data as JSON:
<a href="../api/2.0/tether/sync/status">api/2.0/tether/sync/status</a>;
in a shell: <code>tether sync status</code>, <code>tether sync retry</code>.</p>
</main></body></html>
"""
