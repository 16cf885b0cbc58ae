"""The stock UI's workspace selector with workspaces and authentication on, in headless
Chromium: a team member signs in, sees only the workspaces they hold a role in, and
switching workspace in the selector shows only that workspace's experiments, with no request
to Tether failing on the way (browser.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support import BackendUriFactory, TetherServer
from support.auth import ADMIN, ADMIN_PASSWORD, http, tether_auth_server
from ui.browser import Visit, chromium

pytestmark = pytest.mark.browser

MEMBER, MEMBER_PASSWORD = "member", "member-password-1"
TEAMS = ("team-a", "team-b", "team-c")


def _as_admin(client: httpx.Client, method: str, path: str, **kw: object) -> dict[str, object]:
    answer = client.request(method, path, **kw)  # type: ignore[arg-type]
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else {}


@pytest.fixture(scope="module")
def workspaces_ui(make_backend_uri: BackendUriFactory) -> Iterator[TetherServer]:
    """Tether with the UI, workspaces and authentication; each team's workspace holds one
    experiment (`exp-of-<team>`), `default` holds `exp-of-default`; the member holds the
    seeded `user` role of team-a and team-b, none in team-c or default."""
    server = tether_auth_server(make_backend_uri("sqlite"), extra_args=["--enable-workspaces"])
    try:
        with http(server.url, ADMIN, ADMIN_PASSWORD) as admin:
            _as_admin(
                admin,
                "POST",
                "/api/2.0/mlflow/users/create",
                json={"username": MEMBER, "password": MEMBER_PASSWORD},
            )
            for team in TEAMS:
                _as_admin(admin, "POST", "/api/3.0/mlflow/workspaces", json={"name": team})
                _as_admin(
                    admin,
                    "POST",
                    "/api/2.0/mlflow/experiments/create",
                    json={"name": f"exp-of-{team}"},
                    headers={"X-MLFLOW-WORKSPACE": team},
                )
            _as_admin(
                admin, "POST", "/api/2.0/mlflow/experiments/create", json={"name": "exp-of-default"}
            )
            roles = _as_admin(admin, "GET", "/api/3.0/mlflow/roles/list")["roles"]
            for role in roles:  # type: ignore[union-attr]
                if role["name"] == "user" and role["workspace"] in ("team-a", "team-b"):
                    _as_admin(
                        admin,
                        "POST",
                        "/api/3.0/mlflow/roles/assign",
                        json={"username": MEMBER, "role_id": role["id"]},
                    )
        yield server
    finally:
        server.stop()


def _experiments_shown(visit: Visit, team: str) -> None:
    """Only `team`'s experiment is listed (waiting for it; the others must be absent)."""
    visit.wait_for_text(f"exp-of-{team}")
    for other in ("default", *TEAMS):
        if other != team:
            assert visit.page.get_by_text(f"exp-of-{other}").count() == 0, other


def _choose(visit: Visit, current: str, team: str) -> None:
    """Open the sidebar's workspace selector (showing `current`) and pick `team`."""
    visit.page.get_by_text(current, exact=True).first.click()
    visit.page.get_by_role("option").filter(has_text=team).first.click()


def test_workspace_selector_switches_experiments(
    chromium_binary: str, workspaces_ui: TetherServer
) -> None:
    with (
        chromium(workspaces_ui.url, credentials=(MEMBER, MEMBER_PASSWORD)) as browser,
        browser.visit("/#/", "workspace-selector") as visit,
    ):
        # The landing page lists the member's workspaces, and only those.
        visit.shown("team-a", "team-b")
        assert visit.page.get_by_text("team-c", exact=True).count() == 0
        visit.page.get_by_text("team-a", exact=True).first.click()
        _experiments_shown(visit, "team-a")
        visit.screenshot("-team-a")
        _choose(visit, "team-a", "team-b")
        _experiments_shown(visit, "team-b")
        options = visit.page.get_by_role("option")
        assert options.count() == 0  # the selector closed after the choice
        visit.check("exp-of-team-b")
        searches = [a for a in visit.answers if a.path.endswith("/experiments/search")]
        assert len(searches) >= 2 and all(a.status == 200 for a in searches)
