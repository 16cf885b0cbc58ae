"""The container files (docker/), checked without a Docker engine:

- the Dockerfile passes hadolint (every rule, every level, no inline ignores);
- the compose files validate against the Compose Specification schema (vendored in
  check-jsonschema) and hang together (volumes, dependencies, TETHER_* names);
- the Dockerfile keeps its invariants (parsed with dockerfile-parse);
- the image's own commands run as plain processes: the builder stage's install script on a copy
  of exactly what the builder COPYs (filtered by .dockerignore), then the ENTRYPOINT with the
  final stage's ENV, the HEALTHCHECK command until it passes, MLflow REST calls, a SIGTERM;
- the compose stack's container job and Tether's compose environment, against this session's
  Azurite and PostgreSQL in place of the stack's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from support import MlflowRest, free_port, unique_name
from support.procs import ManagedProcess
from support.servers import STARTUP_TIMEOUT, clean_env
from tether import MLFLOW_VERSION, __version__
from tether.config import Settings

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE_FILES = [DOCKER / "compose.yaml", DOCKER / "compose.azure.yaml"]
BIN = Path(sys.executable).parent  # hadolint and check-jsonschema come with the test extras
SETTINGS = {f"TETHER_{name.upper()}" for name in Settings.model_fields}
STOP_GRACE_SECONDS = 45  # compose's stop_grace_period; docker stop must wait this long


def _tool(name: str) -> str:
    path = BIN / name
    if not path.is_file():
        pytest.fail(f"{name} is missing: install the test extras (pip install -e '.[test]')")
    return str(path)


# ------------------------------------------------------------------------------- the Dockerfile


@dataclass
class Instruction:
    name: str
    value: str


def _stages() -> list[list[Instruction]]:
    """The Dockerfile's stages, each from its FROM on (comments dropped)."""
    stages: list[list[Instruction]] = []
    for item in DockerfileParser(path=str(DOCKERFILE)).structure:
        if item["instruction"] == "COMMENT":
            continue
        if item["instruction"] == "FROM":
            stages.append([])
        stages[-1].append(Instruction(item["instruction"], " ".join(item["value"].split())))
    return stages


def _values(stage: list[Instruction], name: str) -> list[str]:
    return [i.value for i in stage if i.name == name]


def _final_env() -> dict[str, str]:
    return dict(DockerfileParser(path=str(DOCKERFILE)).envs)


def _healthcheck_argv() -> list[str]:
    (value,) = _values(_stages()[-1], "HEALTHCHECK")
    argv: list[str] = json.loads(value[value.index("CMD ") + 4 :])
    return argv


def _entrypoint() -> list[str]:
    (value,) = _values(_stages()[-1], "ENTRYPOINT")
    argv: list[str] = json.loads(value)
    return argv


def _hadolint(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [_tool("hadolint"), "--format", "json", "--disable-ignore-pragma", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    assert (result.returncode != 0) == bool(findings), result.stderr
    return findings


def test_hadolint_finds_nothing() -> None:
    findings = _hadolint(DOCKERFILE)
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install tether\nUSER root\n")
    codes = {f["code"] for f in _hadolint(bad)}
    assert {"DL3007", "DL3013", "DL3002"} <= codes


def test_dockerfile_invariants() -> None:
    builder, final = _stages()[0], _stages()[-1]
    assert len(_stages()) == 2
    base = re.fullmatch(r"(python:3\.11\.\d+-slim-\w+) AS builder", builder[0].value)
    assert base, f"builder must be a pinned python:3.11.x-slim image: {builder[0].value}"
    assert final[0].value == base[1], "both stages use the same pinned base image"

    # The final stage copies the venv from the builder and nothing else.
    assert _values(final, "COPY") == ["--from=builder /opt/tether /opt/tether"]
    assert _values(final, "ADD") == []

    users = _values(final, "USER")
    assert users, "the final stage sets a USER"
    assert users[-1].split(":")[0] not in ("root", "0"), "runs as an unprivileged user"

    env = _final_env()
    assert env["PATH"].startswith("/opt/tether/bin:"), "the venv's tether and python come first"
    tether_env = {k for k in env if k.startswith("TETHER_")}
    assert tether_env <= SETTINGS, f"not settings: {tether_env - SETTINGS}"
    assert env["TETHER_HOST"] == "0.0.0.0"
    assert _values(final, "VOLUME") == [f'["{env["TETHER_DATA_DIR"]}"]']
    assert _values(final, "EXPOSE") == [env["TETHER_PORT"]] == ["5000"]

    assert _entrypoint() == ["tether", "serve"]
    assert _values(final, "CMD") == [], "arguments after the image name go to tether serve"
    health = _healthcheck_argv()
    assert health[:2] == ["python", "-c"] and "/health" in health[2]

    labels = DockerfileParser(path=str(DOCKERFILE)).labels
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.base.name"].endswith("/" + base[1])
    for key in ("title", "description", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), key

    # The builder runs the shared install script, which the test below runs too.
    assert _values(builder, "RUN") == ["sh docker/install.sh /src /opt/tether"]
    assert _values(builder, "WORKDIR") == ["/src"]


# -------------------------------------------------------------------------------- compose files


def _compose(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def test_compose_files_match_the_compose_specification(tmp_path: Path) -> None:
    argv = [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run(
        [*argv, *map(str, COMPOSE_FILES)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # ... and the check can fail: an unknown condition, an unknown key.
    bad = tmp_path / "compose.yaml"
    bad.write_text(
        "services:\n  a:\n    image: x\n    bogus: 1\n"
        "    depends_on:\n      b:\n        condition: healthy\n"
    )
    result = subprocess.run([*argv, str(bad)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_hangs_together(path: Path) -> None:
    compose = _compose(path)
    services: dict[str, Any] = compose["services"]
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source in declared, f"{name}: volume {source} is not declared"
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if spec["condition"] == "service_healthy":
                has_check = "healthcheck" in services[dep] or "build" in services[dep]
                assert has_check, f"{dep} has no healthcheck"  # built: the image's HEALTHCHECK
        build = service.get("build")
        if build:
            context = (path.parent / build["context"]).resolve()
            assert context == REPO and (context / build["dockerfile"]) == DOCKERFILE
    tether = services["tether"]
    env_keys = {k for k in tether["environment"] if k.startswith("TETHER_")}
    assert env_keys <= SETTINGS, f"not settings: {env_keys - SETTINGS}"
    assert "TETHER_BACKEND_STORE_URI" in env_keys
    assert tether["environment"]["TETHER_ARTIFACTS_DESTINATION"].startswith("wasbs://")
    assert tether["volumes"] == ["tether-data:/data"]
    assert tether["stop_grace_period"] == f"{STOP_GRACE_SECONDS}s"
    assert all(port.startswith(("127.0.0.1:", "${")) for port in tether["ports"])


def test_vm_variant_has_no_secret_and_uses_the_identity() -> None:
    tether = _compose(DOCKER / "compose.azure.yaml")["services"]["tether"]
    env = tether["environment"]
    assert env["AZURE_CLIENT_ID"] is None, "passed on from the shell, never written here"
    assert env["TETHER_AZUREML_WORKSPACE"].startswith("${")
    text = (DOCKER / "compose.azure.yaml").read_text()
    for secret in ("AccountKey=", "AZURE_CLIENT_SECRET", "AZURE_STORAGE_CONNECTION_STRING:"):
        assert secret not in text
    assert re.search(r"POSTGRES_PASSWORD: \$\{POSTGRES_PASSWORD:\?", text)


# ------------------------------------------------- the image's commands, as plain processes


def _dockerignore_excludes(relpath: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path (or a parent folder) decides."""
    excluded = False
    parts = relpath.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        regex = re.escape(pattern.rstrip("/")).replace(r"\*\*/", "(?:.*/)?")
        regex = regex.replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def _build_context(dest: Path) -> Path:
    """Apply the builder stage's COPY instructions to `dest` (its WORKDIR), taking files from
    the repository as the build context (.dockerignore applied) would give them."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    builder = _stages()[0]
    for value in _values(builder, "COPY"):
        *sources, target = value.split()
        for source in sources:
            src = REPO / source
            assert src.exists(), f"COPY source {source} is not in the repository"
            assert not _dockerignore_excludes(source, patterns), f".dockerignore drops {source}"
            to = dest / target / src.name if target.endswith("/") else dest / target
            files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
            for file in files:
                rel = file.relative_to(REPO).as_posix()
                if _dockerignore_excludes(rel, patterns):
                    continue
                out = to if src.is_file() else to / file.relative_to(src)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, out)
    return dest


def test_dockerignore_matcher() -> None:
    patterns = ["*", "!server/", "**/__pycache__"]
    assert _dockerignore_excludes(".venv/bin/python", patterns)
    assert not _dockerignore_excludes("server/tether/app.py", patterns)
    assert _dockerignore_excludes("server/tether/__pycache__/app.pyc", patterns)
    assert _dockerignore_excludes("__pycache__/x.pyc", patterns)
    assert not _dockerignore_excludes("server/x.py", ["*.py", "!server/"])


@dataclass
class ImageVenv:
    root: Path  # what the builder installs into /opt/tether

    def env(self, data_dir: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The final stage's ENV, pointed at this venv, `data_dir` and `port`."""
        env = clean_env()
        for key, value in _final_env().items():
            if key == "PATH":  # /opt/tether/bin:$PATH
                value = value.replace("/opt/tether", str(self.root)) + env["PATH"]
            env[key] = value
        env["TETHER_DATA_DIR"] = str(data_dir)
        env["TETHER_PORT"] = str(port)
        # The image listens on 0.0.0.0 (checked above); here only loopback is wanted.
        env["TETHER_HOST"] = "127.0.0.1"
        env.update(extra or {})
        return env

    def resolve(self, argv: list[str], env: dict[str, str]) -> list[str]:
        """argv[0] looked up on the image's PATH, as Docker's exec form does."""
        found = shutil.which(argv[0], path=env["PATH"])
        assert found and found.startswith(str(self.root)), f"{argv[0]} is not the venv's"
        return [found, *argv[1:]]


@pytest.fixture(scope="module")
def image_venv() -> Iterator[ImageVenv]:
    """The builder stage, run here: its COPYs into a fresh folder, then its RUN line (the
    shared docker/install.sh). pip's cache may serve downloads (the image sets
    PIP_NO_CACHE_DIR only to keep the layer small)."""
    tmp = Path(tempfile.mkdtemp(prefix="tether-image-"))
    try:
        src = _build_context(tmp / "src")
        venv = tmp / "opt-tether"
        (run,) = _values(_stages()[0], "RUN")
        argv = run.replace("/src", str(src)).replace("/opt/tether", str(venv)).split()
        env = {**clean_env(), "PYTHON": sys.executable}  # python3 of the image: 3.11 here too
        result = subprocess.run(argv, cwd=src, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
        assert result.stdout.strip().endswith(
            f"tether, version {__version__} (MLflow API {MLFLOW_VERSION})"
        )
        yield ImageVenv(venv)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _healthy(venv: ImageVenv, env: dict[str, str]) -> bool:
    argv = venv.resolve(_healthcheck_argv(), env)
    return subprocess.run(argv, env=env, capture_output=True, timeout=10).returncode == 0


def _start(venv: ImageVenv, env: dict[str, str], cwd: Path) -> ManagedProcess:
    argv = venv.resolve(_entrypoint(), env)
    proc = ManagedProcess(
        "tether-image", argv, log_path=cwd.parent / "tether.log", cwd=cwd, env=env
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT  # 90 s unless TETHER_TEST_STARTUP_TIMEOUT
    while not _healthy(venv, env):  # the HEALTHCHECK command itself decides
        assert proc.alive(), proc.log_text()
        assert time.monotonic() < deadline, "HEALTHCHECK never passed:\n" + proc.log_text()
        time.sleep(0.3)
    return proc


def _sigterm(proc: ManagedProcess) -> int:
    """`docker stop`: SIGTERM to the entrypoint process only; its exit code."""
    os.kill(proc.pid, signal.SIGTERM)
    try:
        code: int = proc.proc.wait(STOP_GRACE_SECONDS)
        return code
    finally:
        proc.stop()


@pytest.mark.timeout(240)
def test_image_commands_serve_mlflow(image_venv: ImageVenv, tmp_path: Path) -> None:
    data = tmp_path / "data"  # the /data volume, also the WORKDIR
    data.mkdir()
    env = image_venv.env(data, free_port())
    assert not _healthy(image_venv, env), "the HEALTHCHECK must fail while nothing listens"
    proc = _start(image_venv, env, data)
    try:
        with MlflowRest(f"http://127.0.0.1:{env['TETHER_PORT']}") as rest:
            name = unique_name()
            created = rest.post("experiments/create", {"name": name})
            assert created.status == 200, created.text
            exp = created.json["experiment_id"]
            run = rest.post("runs/create", {"experiment_id": exp}).json["run"]["info"]["run_id"]
            logged = rest.post(
                "runs/log-metric",
                {"run_id": run, "key": "loss", "value": 0.5, "timestamp": 1, "step": 0},
            )
            assert logged.status == 200, logged.text
            got = rest.get("experiments/get-by-name", {"experiment_name": name})
            assert got.json["experiment"]["experiment_id"] == exp
            put = rest.request(
                "PUT",
                f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/a.txt",
                content=b"hi",
            )
            assert put.status == 200, put.text
            ui = rest.request("GET", "/")  # the image carries the pinned web UI
            assert ui.status == 200 and '<div id="root"' in ui.text, ui.text[:500]
    finally:
        code = _sigterm(proc)
    assert code == 0, proc.log_text()
    # Everything went to TETHER_DATA_DIR, the image's volume.
    assert (data / "tether.db").is_file()
    assert (data / "artifacts" / exp / run / "artifacts" / "a.txt").read_bytes() == b"hi"


def _stack_env(compose: dict[str, Any], service: str) -> dict[str, str]:
    env: dict[str, Any] = compose["services"][service]["environment"]
    return {k: str(v) for k, v in env.items() if v is not None}


@pytest.mark.timeout(240)
def test_compose_stack_commands(
    image_venv: ImageVenv, tmp_path: Path, azurite: Any, new_postgres_database: Any
) -> None:
    """compose.yaml's create-container job and Tether's environment, with this session's
    Azurite and PostgreSQL standing in for the stack's `azurite` and `postgres` services."""
    compose = _compose(DOCKER / "compose.yaml")
    local_blob = f"BlobEndpoint={azurite.blob_endpoint};"

    job = compose["services"]["create-container"]
    job_env = _stack_env(compose, "create-container")
    job_env["AZURE_STORAGE_CONNECTION_STRING"] = job_env["AZURE_STORAGE_CONNECTION_STRING"].replace(
        "BlobEndpoint=http://azurite:10000/devstoreaccount1;", local_blob
    )
    assert local_blob in job_env["AZURE_STORAGE_CONNECTION_STRING"]
    container = unique_name("artifacts")
    job_env["ARTIFACT_CONTAINER"] = container
    env = image_venv.env(tmp_path, 0, job_env)
    argv = image_venv.resolve([*job["entrypoint"], *job["command"]], env)
    for expected in ("created container", "already exists"):  # idempotent
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and expected in done.stdout, done.stdout + done.stderr

    tether_env = _stack_env(compose, "tether")
    assert tether_env["AZURE_STORAGE_CONNECTION_STRING"] == compose["x-azurite-connection"]
    tether_env["AZURE_STORAGE_CONNECTION_STRING"] = job_env["AZURE_STORAGE_CONNECTION_STRING"]
    default_uri = "postgresql://tether:${POSTGRES_PASSWORD:-tether}@postgres:5432/tether"
    assert tether_env["TETHER_BACKEND_STORE_URI"] == default_uri
    tether_env["TETHER_BACKEND_STORE_URI"] = new_postgres_database()
    default_dest = "wasbs://tether-artifacts@devstoreaccount1.blob.core.windows.net"
    assert tether_env["TETHER_ARTIFACTS_DESTINATION"] == default_dest
    assert job["environment"]["ARTIFACT_CONTAINER"] == "tether-artifacts"
    tether_env["TETHER_ARTIFACTS_DESTINATION"] = default_dest.replace("tether-artifacts", container)

    data = tmp_path / "data"
    data.mkdir()
    env = image_venv.env(data, free_port(), tether_env)
    proc = _start(image_venv, env, data)
    try:
        with MlflowRest(f"http://127.0.0.1:{env['TETHER_PORT']}") as rest:
            exp = rest.post("experiments/create", {"name": unique_name()}).json["experiment_id"]
            run = rest.post("runs/create", {"experiment_id": exp}).json["run"]["info"]["run_id"]
            path = f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/m.txt"
            assert rest.request("PUT", path, content=b"blob").status == 200
            assert rest.request("GET", path).text == "blob"
    finally:
        code = _sigterm(proc)
    assert code == 0, proc.log_text()

    from azure.storage.blob import BlobServiceClient

    conn = tether_env["AZURE_STORAGE_CONNECTION_STRING"]
    with BlobServiceClient.from_connection_string(conn) as client:
        names = [b.name for b in client.get_container_client(container).list_blobs()]
    assert names == [f"{exp}/{run}/artifacts/m.txt"]
    assert not (data / "tether.db").exists(), "PostgreSQL, not the embedded store"
