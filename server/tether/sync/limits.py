"""Azure ML's limits (docs/azureml-protocol.md §4.1, §4.2) and mappings that respect them.

Nothing here talks to Azure or the database: given what was already sent, decide what to send
and what to report, so a replayed outbox row makes the same decisions again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tether.sync.state import Report

METRICS_PER_BATCH = 250
PARAMS_PER_BATCH = 100
TAGS_PER_BATCH = 100
PARAMS_PER_RUN = 200
TAGS_PER_RUN = 50
TAGS_PER_EXPERIMENT = 50
TAG_KEY_MAX = 100  # runs; experiment tag keys may have 250
TAG_VALUE_MAX = 1000
EXPERIMENT_NAME_MAX = 256
SOURCE_RUN_TAG = "tether.source_run_id"
SOURCE_VERSION_TAG = "tether.source_version"  # "<registered model id>/<version>"
TAGS_PER_MODEL = 50  # registered models and versions: assumed as for runs [INF]
DESCRIPTION_MAX = 5000  # [INF]: Azure's limit is not documented
PARENT_RUN_TAG = "mlflow.parentRunId"

_NAME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,255}")
_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def azure_experiment_name(name: str, *, salt: str | None = None) -> str:
    """The name to use in Azure: unchanged when allowed, else a safe form plus a hash suffix.

    The suffix (of the original name, and of `salt` when given) keeps two local names that
    sanitize alike apart; `salt` (the local experiment id) is the fallback when the plain
    candidate is taken in Azure by something else.
    """
    if salt is None and _NAME_OK.fullmatch(name):
        return name
    digest = hashlib.sha256(f"{name}\0{salt or ''}".encode()).hexdigest()[:8]
    base = _NAME_BAD_CHARS.sub("_", name).lstrip("_-")[: EXPERIMENT_NAME_MAX - 9]
    return f"{base}-{digest}" if base else f"experiment-{digest}"


_MODEL_NAME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_MODEL_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def azure_model_name(name: str) -> str:
    """A registered model's name in Azure: letters, digits, `-`, `.`, `_`, starting with a
    letter or digit (docs/azureml-protocol.md §6); else a safe form plus a hash of the original."""
    if _MODEL_NAME_OK.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    base = _MODEL_NAME_BAD.sub("_", name).lstrip("_-.")[:200]
    return f"{base}-{digest}" if base else f"model-{digest}"


def description(text: str | None, reports: list[Report]) -> str | None:
    if text is not None and len(text) > DESCRIPTION_MAX:
        reports.append(
            Report("truncated", "description", f"{len(text)} chars cut to {DESCRIPTION_MAX}")
        )
        return text[:DESCRIPTION_MAX]
    return text


@dataclass
class TagBudget:
    """Tag keys already in the Azure entity and the per-entity cap; decides each new tag."""

    sent: set[str]
    max_tags: int
    max_key: int = TAG_KEY_MAX
    max_value: int = TAG_VALUE_MAX

    def admit(self, tags: Mapping[str, str], reports: list[Report]) -> dict[str, str]:
        """The tags to send (values truncated where needed); refusals go to `reports`."""
        out: dict[str, str] = {}
        for key, value in tags.items():
            if len(key) > self.max_key:
                reports.append(
                    Report("skipped", f"tag:{key}", f"tag key longer than {self.max_key} chars")
                )
                continue
            if key not in self.sent and len(self.sent) >= self.max_tags:
                reports.append(
                    Report("skipped", f"tag:{key}", f"over Azure's {self.max_tags} tags per entity")
                )
                continue
            if len(value) > self.max_value:
                reports.append(
                    Report(
                        "truncated",
                        f"tag:{key}",
                        f"value of {len(value)} chars cut to Azure's {self.max_value}",
                    )
                )
                value = value[: self.max_value]
            self.sent.add(key)
            out[key] = value
        return out


def admit_params(
    params: Mapping[str, str], already: int, reports: list[Report]
) -> tuple[dict[str, str], int]:
    """Params within Azure's per-run cap, in order; the rest is reported as skipped."""
    room = max(0, PARAMS_PER_RUN - already)
    keys = list(params)
    for key in keys[room:]:
        reports.append(
            Report("skipped", f"param:{key}", f"over Azure's {PARAMS_PER_RUN} params per run")
        )
    kept = {k: params[k] for k in keys[:room]}
    return kept, already + len(kept)


def chunks(items: dict[str, str], size: int) -> list[dict[str, str]]:
    keys = list(items)
    return [{k: items[k] for k in keys[i : i + size]} for i in range(0, len(keys), size)]
