"""moto's server, made durable across restarts like the AWS services it stands in for.

On SIGTERM or SIGINT it stops accepting connections, lets the requests in flight finish, and
writes every service's state to --state; on start it loads that file when present. A restart
therefore loses nothing that was acknowledged, and the soak can restart "AWS" mid-run. Without
--state it is plain `moto_server`.

    python local/moto_durable.py --port 5000 --state local/.run/moto-state.pickle
"""

import argparse
import copyreg
from collections import defaultdict
import io
import json
import os
import pickle
import re
import signal
import threading
import time

from moto.backends import get_backend
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

# What the functions, the bootstrap and CloudFormation's stacks use.
SERVICES = (
    "apigateway",
    "cloudformation",
    "dynamodb",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
)
# Within local/lib.sh's STOP_TIMEOUT (10 s), which ends in SIGKILL.
DRAIN_SECONDS = 5.0
CALLS_PATH = "/_local/calls"


class Calls:
    """Calls received, by the caller's User-Agent product and the signed service (the benchmark
    counts a lifecycle's calls at the emulator): GET /_local/calls, DELETE clears."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def count(self, environ) -> None:
        caller = environ.get("HTTP_USER_AGENT", "").split("/", 1)[0] or "unknown"
        scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
        key = f"{caller} {scope.group(1) if scope else 'unsigned'}"
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def answer(self, environ, start_response):
        with self.lock:
            if environ.get("REQUEST_METHOD") == "DELETE":
                self.counts.clear()
            body = json.dumps(dict(sorted(self.counts.items()))).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]


class InFlight:
    """Counts requests being served, so a shutdown can wait for them; once closed, answers 503
    (which the SDKs retry), also on kept-alive connections, so nothing is acknowledged after the
    state is saved."""

    def __init__(self, app):
        self.app = app
        self.count = 0
        self.closed = False
        self.idle = threading.Condition()
        self.calls = Calls()

    def close(self) -> None:
        with self.idle:
            self.closed = True

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == CALLS_PATH:
            return self.calls.answer(environ, start_response)
        self.calls.count(environ)
        with self.idle:
            if self.closed:
                start_response(
                    "503 Service Unavailable",
                    [("Content-Type", "text/plain"), ("Connection", "close")],
                )
                return [b"moto is restarting"]
            self.count += 1
        try:
            # moto answers with a list or a short iterator: consume it inside the count.
            return list(self.app(environ, start_response))
        finally:
            with self.idle:
                self.count -= 1
                self.idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self.idle:
            return self.idle.wait_for(lambda: self.count == 0, timeout)


def _tag_dict(items: dict) -> defaultdict:
    """SSM's resource tags as moto builds them: defaultdict(lambda: defaultdict(dict))."""
    restored = defaultdict(lambda: defaultdict(dict))
    restored.update(items)
    return restored


def _subclass_dict(cls: type, default_factory, attributes: dict, items: dict) -> defaultdict:
    """A defaultdict subclass whose __init__ takes other arguments (SSM's ParameterDict)."""
    restored = cls.__new__(cls)
    defaultdict.__init__(restored, default_factory)
    restored.__dict__.update(attributes)
    restored.update(items)
    return restored


def _reduce_defaultdict(value: defaultdict):
    # A lambda default factory cannot be pickled; moto's only one (SSM's tags) is rebuilt.
    if getattr(value.default_factory, "__name__", "") == "<lambda>":
        return (_tag_dict, (dict(value),))
    return value.__reduce__()


def _reduce_defaultdict_subclass(value: defaultdict):
    return (_subclass_dict, (type(value), value.default_factory, dict(value.__dict__), dict(value)))


def dump_state(path: str) -> None:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    # Backends hold locks; a restored backend gets fresh ones.
    pickler.dispatch_table = copyreg.dispatch_table.copy()
    pickler.dispatch_table[type(threading.RLock())] = lambda _: (threading.RLock, ())
    pickler.dispatch_table[type(threading.Lock())] = lambda _: (threading.Lock, ())
    pickler.dispatch_table[defaultdict] = _reduce_defaultdict
    # dispatch_table matches exact types: register moto's defaultdict subclasses too.
    from moto.ssm.models import ParameterDict
    pickler.dispatch_table[ParameterDict] = _reduce_defaultdict_subclass
    pickler.dump({name: dict(get_backend(name)) for name in SERVICES})
    temporary = f"{path}.tmp"
    with open(temporary, "wb") as file:
        file.write(buffer.getvalue())
    os.replace(temporary, path)


def load_state(path: str) -> None:
    with open(path, "rb") as file:
        state = pickle.load(file)
    for name, accounts in state.items():
        backend = get_backend(name)
        backend.clear()
        backend.update(accounts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--state", help="file the state is saved to on stop and loaded from on start")
    args = parser.parse_args()

    if args.state and os.path.exists(args.state):
        started = time.monotonic()
        load_state(args.state)
        print(f"moto: state loaded from {args.state} in {time.monotonic() - started:.2f}s", flush=True)

    app = InFlight(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    stopping = threading.Event()

    def stop(signum, _frame):
        if not stopping.is_set():
            stopping.set()
            print(f"moto: signal {signum}, stopping", flush=True)
            app.close()
            # shutdown() waits for serve_forever to return, so it runs off the serving thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"moto: serving on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()
    server.server_close()
    if not app.wait_idle(DRAIN_SECONDS):
        print(f"moto: {app.count} requests still in flight after {DRAIN_SECONDS}s", flush=True)
    if args.state:
        started = time.monotonic()
        dump_state(args.state)
        print(f"moto: state saved to {args.state} in {time.monotonic() - started:.2f}s", flush=True)
    # Handler threads stuck in moto must not hold the exit once the state is safe.
    os._exit(0)


if __name__ == "__main__":
    main()
