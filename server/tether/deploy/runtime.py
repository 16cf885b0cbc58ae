"""Wiring: settings -> ARM client for online endpoints -> the driver thread of `tether serve`."""

from __future__ import annotations

import logging
import threading

from tether.config import Settings
from tether.db.engine import Database
from tether.deploy.arm import OnlineArm
from tether.deploy.driver import DeployDriver
from tether.sync.azureml.client import AzureMLClient, RetryPolicy
from tether.sync.azureml.credentials import TokenProvider
from tether.sync.azureml.errors import TransientError
from tether.sync.azureml.workspace import parse_workspace_setting

log = logging.getLogger("tether.deploy")


def online_arm(settings: Settings, stop: threading.Event | None = None) -> OnlineArm | None:
    """The workspace's ARM surface for online endpoints; None without a workspace."""
    if not settings.azureml_workspace:
        return None
    ref = parse_workspace_setting(settings.azureml_workspace)
    retry = RetryPolicy(attempts=4, max_delay=10.0)  # longer waits: the row's next attempt
    if stop is not None:
        retry.sleep = lambda seconds: _wait_unless_stopped(stop, seconds)
    client = AzureMLClient(TokenProvider(), retry=retry, timeout=60.0)
    return OnlineArm(client, settings.azureml_arm_endpoint, ref)


def _wait_unless_stopped(stop: threading.Event, seconds: float) -> None:
    if stop.wait(seconds):
        raise TransientError("the deployment driver is stopping")


class BackgroundDeploy:
    """The driver thread: started with the server when a workspace is configured."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self._stop = threading.Event()
        arm = online_arm(settings, self._stop)
        assert arm is not None
        self.driver = DeployDriver(db, arm, poll_s=settings.deploy_poll_seconds)
        self.driver.stop_event = self._stop
        self._thread = threading.Thread(target=self._main, name="tether-deploy", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _main(self) -> None:
        while not self._stop.is_set():
            try:
                self.driver.run_forever()
            except Exception:  # a bug or the database away: log, pause, go on
                log.exception("deploy: driver loop failed; restarting in 5 s")
                self._stop.wait(5.0)
