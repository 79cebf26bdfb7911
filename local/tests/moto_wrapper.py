"""local/moto_durable.py started as local/up.sh starts it, for the tests of its additions."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

LOCAL_DIR = Path(__file__).resolve().parent.parent
READY_SECONDS = 30
STOP_SECONDS = 10
# The wrapper's own settings: a test starts it with exactly the ones it gives.
WRAPPER_VARIABLES = ("MOTO_APIGW_KEY_RATE", "MOTO_APIGW_KEY_BURST", "MOTO_APIGW_KEY_QUOTA",
                     "MOTO_KEEP_ALIVE")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Wrapper:
    """moto_durable.py on a free port of 127.0.0.1 with its own state file; `settings` are its
    MOTO_APIGW_* variables (none given: its defaults, whatever the caller's environment says)."""

    def __init__(self, directory: Path, settings: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = directory / "moto-state.pickle"
        self.log = directory / "moto.log"
        self.environment = {k: v for k, v in os.environ.items() if k not in WRAPPER_VARIABLES}
        self.environment.update(settings or {})
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(LOCAL_DIR / "moto_durable.py"),
                 "--port", str(self.port), "--state", str(self.state)],
                cwd=LOCAL_DIR.parent, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=self.environment,
            )
        deadline = time.monotonic() + READY_SECONDS
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"moto_durable.py did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).close()
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """SIGTERM (the wrapper saves its state), SIGKILL if it does not end in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        assert self.state.exists(), self.log.read_text()
        self.start()
