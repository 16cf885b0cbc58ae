"""`GET /tether/` (the sync page) and `POST /tether/retry` (its retry buttons).

The retry form posts `entity=TYPE:ID` (one dead entity, with what waits on it) or
`all=dead`, as `tether sync retry` does, then redirects back to the page (303) with what it
did. Like the API's writes, a cross-origin post is refused (tether.ui.security). With
authentication on, the page and its retry need an admin.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from tether.api.access import ADMIN, guard
from tether.db.engine import Database
from tether.deploy.service import DeployService
from tether.errors import invalid_parameter
from tether.sync import bindings, state
from tether.sync import status as sync_status
from tether.sync.state import Key
from tether.threads import blocking
from tether.ui.sync_page import data, page
from tether.ui.sync_page.studio import studio

router = APIRouter(include_in_schema=False)


@router.get("/tether", dependencies=[guard(ADMIN)])
async def sync_page_without_slash() -> RedirectResponse:
    # Relative: under --static-prefix the browser resolves it to <prefix>/tether/.
    return RedirectResponse("tether/", status_code=308)


@router.get("/tether/", response_class=HTMLResponse, dependencies=[guard(ADMIN)])
async def sync_page(
    request: Request,
    status: str | None = None,
    experiment: str | None = None,
    retried: str | None = None,
) -> HTMLResponse:
    if status is not None and status not in data.BUCKETS:
        raise invalid_parameter(f"status must be one of {', '.join(data.BUCKETS)}")
    db: Database = request.app.state.db
    settings = request.app.state.settings

    def read() -> data.Page:
        with db.read() as session:
            loaded = data.load(session, status, experiment or None)
            bound = bindings.kinds(session, settings)
            loaded.summary["workspaces"] = sync_status.by_workspace(session, bound)
            return loaded

    loaded = await blocking(read)
    deploy: DeployService = request.app.state.services.get(DeployService)
    deployments = await blocking(lambda: deploy.list(every_workspace=True))
    body = page.render(
        loaded,
        enabled=bool(settings.azureml_workspace),
        workspace=settings.azureml_workspace,
        studio=studio(settings),
        status=status,
        experiment=experiment or None,
        notice=None if retried is None else _notice(retried),
        deployments=deployments,
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


def _notice(retried: str) -> str:
    if retried in ("", "0"):
        return "Nothing to retry: no such dead entity (it may have been retried already)."
    return f"Queued again: {retried}."


@router.post("/tether/retry", dependencies=[guard(ADMIN)])
async def retry(request: Request) -> RedirectResponse:
    # A urlencoded form of two fields: parsed here rather than with python-multipart.
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    entity = form.get("entity", [None])[-1]
    if (entity is None) == (form.get("all", [None])[-1] != "dead"):
        raise invalid_parameter("post entity=TYPE:ID or all=dead")
    keys: list[Key] | None = None
    if entity is not None:
        try:
            keys = [Key.parse(entity)]
        except ValueError as exc:
            raise invalid_parameter(str(exc)) from None
    db: Database = request.app.state.db

    def requeue() -> list[Key]:
        with db.write() as session:
            return state.requeue(session, keys)

    requeued = await blocking(requeue)
    done = ", ".join(str(k) for k in requeued) or "0"
    return RedirectResponse("./?" + urlencode({"retried": done}), status_code=303)
