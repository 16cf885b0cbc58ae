#!/usr/bin/env bash
# Set up .venv (when needed) and run every check: ruff, ruff format, mypy, import-linter
# (the layering contracts in pyproject.toml), then pytest.
#   scripts/test.sh                       # everything (what CI runs)
#   scripts/test.sh -k runs -x            # extra arguments go to pytest
#   TETHER_TEST_SKIP_LINT=1 scripts/test.sh tests/test_infra.py
# The PostgreSQL tests need the server binaries (Debian: apt-get install postgresql); without
# them they fail, unless TETHER_TEST_SKIP_POSTGRES=1 is set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when pyproject.toml changed since the last install (or tether is missing).
stamp="$VENV/.tether-test-install"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] \
  || ! "$VENV/bin/python" -c "import tether, pytest" 2>/dev/null; then
  echo "==> pip install -e .[test]"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]"
  echo "$want" >"$stamp"
fi

failed=()
step() {
  local name="$1"
  shift
  echo "==> $name"
  if ! "$@"; then
    failed+=("$name")
  fi
}

if [ "${TETHER_TEST_SKIP_LINT:-0}" != "1" ]; then
  step "ruff check" "$VENV/bin/ruff" check .
  step "ruff format --check" "$VENV/bin/ruff" format --check .
  step "mypy" "$VENV/bin/mypy"
  step "import-linter" "$VENV/bin/lint-imports" --no-cache
fi
if [ "${#failed[@]}" -gt 0 ]; then
  (IFS=,; echo "==> FAILED before tests: ${failed[*]} (running the tests anyway)")
fi

echo "==> pytest"
set +e
"$VENV/bin/python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  rc=1
fi
if [ "${#failed[@]}" -gt 0 ]; then
  (IFS=,; echo "FAILED: ${failed[*]}" >&2)
  [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
