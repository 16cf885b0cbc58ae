"""The directory `--expose-prometheus DIR` names, prepared before any worker starts.

prometheus-client's multiprocess mode keeps each process's samples in memory-mapped files
there and sums them at scrape time, so `/metrics` is the same whichever worker answers.
It picks the mode when it is first imported, from PROMETHEUS_MULTIPROC_DIR: this module
must not import it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The files prometheus-client writes (`<type>_<pid>.db`); nothing else in DIR is touched.
_SAMPLE_FILE = re.compile(r"(?:counter|histogram|summary|gauge_[a-z]+)_\d+\.db")


def prepare(path: str | os.PathLike[str]) -> Path:
    """Create DIR if missing (as `mlflow server --expose-prometheus` does), drop the sample
    files of a previous run (their counters would otherwise be added to this run's), and
    point this process and the workers it starts at it."""
    directory = Path(path).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if _SAMPLE_FILE.fullmatch(entry.name):
            entry.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory
