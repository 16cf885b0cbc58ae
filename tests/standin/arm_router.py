"""One ARM host in front of several stand-in workspaces, as management.azure.com is one host
for every Azure ML workspace: a request goes to the stand-in whose resource group its path
names (`/subscriptions/<s>/resourceGroups/<rg>/...`), anything else is ARM's 404.

Each stand-in serves only its own scope, so a Tether server deploying into two Azure ML
workspaces (one `--azureml-arm-endpoint`) needs this in front. Plain HTTP on loopback (the
client accepts any base URL); what the stand-ins hand out (operation URLs, scoring URIs)
names their own HTTPS hosts and is followed there directly.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from standin.workspace import AzuremlWorkspace

_GROUP = re.compile(r"/resourceGroups/(?P<rg>[^/?]+)", re.I)
_FORWARDED = ("authorization", "content-type")
_RETURNED = ("content-type", "azure-asyncoperation", "location", "retry-after")


class ArmRouter:
    """`.endpoint` is the base URL to give Tether as its ARM endpoint; `.stop()` ends it."""

    def __init__(self, *workspaces: AzuremlWorkspace) -> None:
        self._clients = {ws.resource_group.lower(): ws.client(timeout=60.0) for ws in workspaces}
        router = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                match = _GROUP.search(self.path)
                client = router._clients.get(match["rg"].lower()) if match else None
                if client is None:
                    self._answer(404, {"content-type": "application/json"}, b'{"error": {}}')
                    return
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() in _FORWARDED}
                got = client.request(self.command, self.path, content=body, headers=headers)
                kept = {k: v for k, v in got.headers.items() if k.lower() in _RETURNED}
                self._answer(got.status_code, kept, got.content)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass  # the stand-ins log every request themselves

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for client in self._clients.values():
            client.close()
