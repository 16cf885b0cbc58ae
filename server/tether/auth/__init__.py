"""Authentication and permissions: MLflow 3.17's basic-auth app, personal access tokens and
Microsoft Entra ID, for a shared team endpoint.

Off unless `--app-name basic-auth` / `TETHER_APP_NAME=basic-auth` (`config`). Then:
- `middleware`: reads the Authorization header of every request (HTTP basic, a personal
  access token or an Entra ID access token as a bearer token: `credentials`, `tokens`,
  `entra`), refuses bad credentials (401, 429 after repeated failures: `limits`) and leaves
  the caller's `Identity` in the request scope;
- `gate`: decides each route's declared rule (`tether.api.access`) from the caller's grants
  (`store`, folded as MLflow folds them: `permissions`) and hands searches the readable set;
- `endpoints`: MLflow's user, permission and role API, and Tether's token API.
Users, roles, grants and tokens live in the `auth_*` tables (`tether.db.models.auth`).
"""
