"""Run `bench.run` on PostgreSQL: a throwaway local cluster, one fresh database per server.

    .venv/bin/python -m bench.pg [bench.run options]

The cluster is the test suite's (tests/support/postgres.py: PostgreSQL server binaries from
`apt-get install postgresql`, trust auth on a free loopback port, fsync and synchronous_commit
off, removed on exit). The reference gets `postgresql+psycopg://`, the psycopg 3 driver this
venv has, so it needs no psycopg2. FastTrackML stays on SQLite.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python bench/pg.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.postgres import PostgresCluster

from bench.run import main


def run(argv: list[str]) -> int:
    cluster = PostgresCluster()
    try:
        tether_uri = cluster.new_database("bench_tether")
        mlflow_uri = cluster.new_database("bench_mlflow")
        mlflow_uri = mlflow_uri.replace("postgresql://", "postgresql+psycopg://", 1)
        print(f"PostgreSQL cluster on {cluster.uri('postgres')}", file=sys.stderr)
        return main(
            [*argv, "--postgres-uri-tether", tether_uri, "--postgres-uri-mlflow", mlflow_uri]
        )
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
