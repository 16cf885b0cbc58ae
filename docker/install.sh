#!/bin/sh
# Tether's install steps, run by the image's builder stage (docker/Dockerfile) and by
# tests/test_docker.py, so the test installs exactly as the image does:
#   sh docker/install.sh SOURCE_DIR VENV_DIR
# builds the wheel from SOURCE_DIR (pyproject.toml, README.md, server/, alembic/) and installs
# it with its dependencies into a new virtual environment at VENV_DIR, then the pinned MLflow
# web UI's files into it (`tether ui install`: the mlflow wheel's UI build only, 26.6 MB).
# PYTHON picks the interpreter (default python3).
set -eu
src="$1"
venv="$2"
dist="$(mktemp -d)"
trap 'rm -rf "$dist"' EXIT

"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip wheel --disable-pip-version-check --no-deps --wheel-dir "$dist" "$src"
"$venv/bin/python" -m pip install --disable-pip-version-check "$dist"/tether-*.whl
"$venv/bin/tether" ui install
"$venv/bin/tether" --version
