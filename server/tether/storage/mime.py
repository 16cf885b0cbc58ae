"""Download headers as `mlflow server` sends them: its MIME guess and an attachment disposition."""

from __future__ import annotations

import mimetypes
import os
import re
import unicodedata
import urllib.parse

# mlflow.utils.mime_type_utils.get_text_extensions(): served as text/plain.
_TEXT_EXTENSIONS = frozenset(
    {
        *("txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop"),
        *("hocon", "toml", "yaml", "yml", "xml", "json", "js", "py", "py3", "csv", "tsv"),
        *("md", "rst", "ipynb", "MLmodel", "MLproject"),
    }
)
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")


def guess_mime_type(filename: str) -> str:
    extension = os.path.splitext(filename)[1].replace(".", "")
    if (extension or filename) in _TEXT_EXTENSIONS:
        return "text/plain"
    mime_type, _ = mimetypes.guess_type(filename)
    return mime_type or "application/octet-stream"


def _quote(value: str) -> str:
    if _TOKEN.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def content_disposition(filename: str) -> str:
    """RFC 6266 attachment; non-ASCII names get an ASCII fallback plus `filename*`."""
    try:
        filename.encode("ascii")
    except UnicodeEncodeError:
        fallback = (
            unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
            or "download"
        )
        quoted = urllib.parse.quote(filename, safe="!#$&+-.^_`|~")
        return f"attachment; filename={_quote(fallback)}; filename*=UTF-8''{quoted}"
    return f"attachment; filename={_quote(filename)}"
