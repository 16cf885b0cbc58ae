"""Wiring: settings -> the ARM clients of the bound workspaces -> the driver thread of
`tether serve`."""

from __future__ import annotations

import logging
import threading

from tether.config import Settings
from tether.db.engine import Database
from tether.deploy.driver import DeployDriver
from tether.deploy.targets import OnlineArms

log = logging.getLogger("tether.deploy")


class BackgroundDeploy:
    """The driver thread: started with the server whenever a workspace can be bound (the
    server's --azureml-workspace, or workspaces on). It idles cheaply (one indexed SELECT a
    poll) while no deployment is active; each row goes to its workspace's binding, read at
    every step, so a bind takes effect without a restart."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self._stop = threading.Event()
        arms = OnlineArms(settings, self._stop)
        self.driver = DeployDriver(db, arms, poll_s=settings.deploy_poll_seconds)
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
