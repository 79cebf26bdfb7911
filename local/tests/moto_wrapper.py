"""local/moto_durable.py started as local/up.sh starts it, for the tests of its additions."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

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

    def client(self, service: str, **config):
        """boto3's client for `service` at this moto; `config`: botocore's Config (retries...)."""
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test",
                            config=Config(**config))

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


@contextlib.contextmanager
def dynamodb_table(directory: Path, table: str, indexes: tuple[str, ...] = (), **create):
    """A moto of its own with one table keyed by pk and sk: its DynamoDB client (no retries).
    `indexes`: string attributes the `create` arguments' indexes are keyed by."""
    running = Wrapper(directory)
    running.start()
    try:
        client = running.client("dynamodb", retries={"max_attempts": 1})
        client.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"}
                                  for name in ("pk", "sk", *indexes)],
            **create)
        yield client
    finally:
        running.stop()
