#!/usr/bin/env python3
"""Side-by-side benchmark of the Stripe webhook: ours (Rust, lambda_runtime) against the Node.js
and Python peers in bench/peers/, each under its real runtime client, all polling the local
Runtime API of bench-harness. Every figure is measured over interleaved rounds (the runtimes in a
new random order each round) and reported as median, min and max. Writes bench/.out/results.json;
bench/report.py turns it into bench/results.md and bench/results.png.

Run by bench/run.sh (make bench), which builds everything and starts moto first.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / ".out"
SECRET = "whsec_bench"
TABLE = "bench-webhook"
RUNTIMES = ("rust", "node", "python")
FIRST_RUNTIME_PORT = 9301
NULL_PORT = 9390
CONTROL_PORT = 9391
CONCURRENCIES = (1, 2, 4, 8)


# --- processes ---------------------------------------------------------------------------------

def commands() -> dict[str, dict]:
    peers = json.loads((ROOT / "bench" / "peers" / "peers.json").read_text())
    return {
        "rust": {"cmd": [str(ROOT / "target" / "release" / "webhook")], "cwd": "."},
        "node": peers["node"],
        "python": peers["python"],
    }


def function_env(lane: int, store: str) -> dict[str, str]:
    endpoint = f"http://127.0.0.1:{NULL_PORT}" if store == "null" else os.environ["BENCH_DYNAMODB"]
    return {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{FIRST_RUNTIME_PORT + lane}",
        "AWS_LAMBDA_FUNCTION_NAME": "webhook", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/webhook",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local", "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "TABLE_NAME": TABLE, "STRIPE_WEBHOOK_SECRETS": SECRET, "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_API_BASE": "http://127.0.0.1:9", "LIVEMODE": "false",
        "PLANS": "free=up_free,pro=up_pro", "USER_POOL_ID": "us-east-1_Bench",
    }


def spawn(runtime: str, lane: int, store: str) -> subprocess.Popen:
    spec = commands()[runtime]
    # peers.json names files relative to the repository's root.
    argv = [str(ROOT / arg) if "/" in arg and not arg.startswith("/") else arg
            for arg in spec["cmd"]]
    return subprocess.Popen(argv, cwd=ROOT / spec.get("cwd", "."),
                            env={**function_env(lane, store), **spec.get("env", {})},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of the process, from the kernel's per-thread accounting."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total


# --- the harness's control API -----------------------------------------------------------------

def control(method: str, path: str, body: bytes | None = None, timeout: float = 300) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{CONTROL_PORT}{path}", data=body,
                                     method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def wait_first_next(lane: int) -> int:
    return int(control("GET", f"/first-next?lane={lane}&timeout_ms=60000")["unix_ns"])


# --- events ------------------------------------------------------------------------------------

class Events:
    """Signed product.updated deliveries with ids unique to the run, newer one after another."""

    def __init__(self) -> None:
        self.n = 0
        self.run = f"{int(time.time())}{random.randrange(10**4):04d}"
        self.base = int(time.time()) - 3600

    def next(self) -> dict:
        self.n += 1
        now = int(time.time())
        body = json.dumps({
            "id": f"evt_bench_{self.run}_{self.n}", "object": "event", "type": "product.updated",
            "created": self.base + self.n, "livemode": False, "api_version": "2025-10-29.clover",
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
            "data": {"object": {"id": f"prod_bench_{self.run}_{self.n % 50}", "object": "product",
                                "name": "Pro", "active": True, "metadata": {"plan": "pro"},
                                "created": 1763700000, "updated": now}},
        }, separators=(",", ":"))
        mac = hmac.new(SECRET.encode(), f"{now}.{body}".encode(), hashlib.sha256).hexdigest()
        return {
            "version": "2.0", "routeKey": "POST /stripe/webhook", "rawPath": "/stripe/webhook",
            "rawQueryString": "",
            "headers": {"content-type": "application/json; charset=utf-8",
                        "stripe-signature": f"t={now},v1={mac}", "user-agent": "Stripe/1.0"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "bench", "domainName": "bench.local",
                "http": {"method": "POST", "path": "/stripe/webhook", "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "Stripe/1.0"},
                "requestId": f"bench-{self.n}", "routeKey": "POST /stripe/webhook",
                "stage": "$default", "timeEpoch": now * 1000},
            "body": body, "isBase64Encoded": False,
        }

    def batch(self, count: int) -> bytes:
        return json.dumps([self.next() for _ in range(count)]).encode()


def invoke(lane: int, event: dict) -> dict:
    answer = control("POST", f"/invoke?lane={lane}", json.dumps(event).encode())
    if answer.get("status") != 200:
        raise RuntimeError(f"lane {lane}: invocation answered {answer}")
    return answer


def load(lane: int, events: Events, count: int) -> float:
    """Queues count deliveries at once; returns the events per second until the last answer."""
    answer = control("POST", f"/load?lane={lane}", events.batch(count))
    if answer["statuses"] != {"200": count}:
        raise RuntimeError(f"lane {lane}: load answered {answer['statuses']}")
    return count / (int(answer["elapsed_ns"]) / 1e9)


# --- the measurements --------------------------------------------------------------------------

def cold_start(runtime: str, lane: int, events: Events) -> dict:
    """Spawn -> first /next (init), spawn -> first answer with its DynamoDB writes to moto."""
    control("POST", f"/reset?lane={lane}")
    spawned = time.time_ns()
    process = spawn(runtime, lane, "moto")
    try:
        first_next = wait_first_next(lane)
        answered = int(invoke(lane, events.next())["done_unix_ns"])
        return {"init_ms": (first_next - spawned) / 1e6,
                "first_response_ms": (answered - spawned) / 1e6,
                "rss_1_mb": peak_rss_mb(process.pid)}
    finally:
        stop([process])


def steady(runtime: str, lane: int, events: Events, count: int) -> dict:
    """Against the null store: CPU per event over count events, peak RSS after them."""
    control("POST", f"/reset?lane={lane}")
    process = spawn(runtime, lane, "null")
    try:
        wait_first_next(lane)
        invoke(lane, events.next())
        before = cpu_ns(process.pid)
        load(lane, events, count - 1)
        return {"cpu_us_per_event": (cpu_ns(process.pid) - before) / (count - 1) / 1e3,
                "rss_1000_mb": peak_rss_mb(process.pid)}
    finally:
        stop([process])


def throughput(rounds: int, events: Events, loads: dict[str, int]) -> dict:
    results: dict = {}
    for store, count in loads.items():
        for concurrency in CONCURRENCIES:
            pools = {}
            try:
                for lane, runtime in enumerate(RUNTIMES):
                    control("POST", f"/reset?lane={lane}")
                    pools[runtime] = [spawn(runtime, lane, store) for _ in range(concurrency)]
                for lane, runtime in enumerate(RUNTIMES):
                    wait_first_next(lane)
                    load(lane, events, 4 * concurrency)  # every process warm
                samples = {runtime: [] for runtime in RUNTIMES}
                for _ in range(rounds):
                    for runtime in random.sample(RUNTIMES, len(RUNTIMES)):
                        samples[runtime].append(load(RUNTIMES.index(runtime), events, count))
                for runtime, values in samples.items():
                    results.setdefault(runtime, {})[f"{store}_c{concurrency}"] = values
                print(f"  throughput {store} c={concurrency}: " + ", ".join(
                    f"{r} {statistics.median(v):.0f}/s" for r, v in samples.items()), flush=True)
            finally:
                stop([p for pool in pools.values() for p in pool])
    return results


def instructions_per_event() -> dict:
    binary = ROOT / "target" / "release" / "examples" / "core_instructions"

    def collected(count: int) -> int:
        run = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                              str(binary), str(count)], capture_output=True, text=True, check=True)
        for line in run.stderr.splitlines():
            if "Collected :" in line:
                return int(line.rsplit(":", 1)[1].strip())
        raise RuntimeError(f"no instruction count from callgrind:\n{run.stderr[-2000:]}")

    small, large = 100, 1100
    low, high = collected(small), collected(large)
    return {"events": large - small, "instructions_per_event": (high - low) / (large - small),
            "instructions_at": {str(small): low, str(large): high}}


def zip_sizes() -> dict:
    sizes = {"rust": (OUT / "zips" / "rust-webhook.zip").stat().st_size}
    peers = ROOT / "bench" / "peers" / ".out"
    sizes["node"] = (peers / "node-webhook.zip").stat().st_size
    sizes["python"] = (peers / "python-webhook.zip").stat().st_size
    with_boto3 = peers / "python-webhook-with-boto3.zip"
    if with_boto3.exists():
        sizes["python_with_boto3"] = with_boto3.stat().st_size
    return sizes


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def versions() -> dict:
    def output(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"

    lock = json.loads((ROOT / "bench/peers/node/package-lock.json").read_text())["packages"]
    node_versions = {name.rsplit("node_modules/", 1)[-1]: meta.get("version")
                     for name, meta in lock.items()
                     if name.rsplit("node_modules/", 1)[-1] in (
                         "stripe", "@aws-sdk/client-dynamodb", "aws-lambda-ric", "esbuild")}
    python_peer = ROOT / "bench/peers/python/.venv/bin/python"
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu_model()}",
        "kernel": platform.release(),
        "rustc": output("rustc", "--version"),
        "node": output("node", "--version"),
        "node_packages": node_versions,
        "python": output(str(python_peer), "--version"),
        "python_packages": output(str(python_peer), "-m", "pip", "freeze").split(),
        "valgrind": output("valgrind", "--version"),
    }


def create_table() -> None:
    dynamodb = boto3.client("dynamodb", endpoint_url=os.environ["BENCH_DYNAMODB"],
                            region_name="us-east-1", aws_access_key_id="local",
                            aws_secret_access_key="local")
    if TABLE not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steady-events", type=int, default=1000)
    parser.add_argument("--null-load", type=int, default=300)
    parser.add_argument("--moto-load", type=int, default=40)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    create_table()
    events = Events()
    started = time.monotonic()
    samples: dict[str, dict[str, list[float]]] = {r: {} for r in RUNTIMES}
    for n in range(args.rounds):
        for lane, runtime in sorted(enumerate(RUNTIMES), key=lambda _: random.random()):
            figures = {**cold_start(runtime, lane, events),
                       **steady(runtime, lane, events, args.steady_events)}
            for name, value in figures.items():
                samples[runtime].setdefault(name, []).append(value)
        print(f"  round {n + 1}/{args.rounds}: " + "; ".join(
            f"{r} init {samples[r]['init_ms'][-1]:.0f} ms, cpu "
            f"{samples[r]['cpu_us_per_event'][-1]:.0f} us/event" for r in RUNTIMES), flush=True)
    rates = throughput(args.rounds, events, {"null": args.null_load, "moto": args.moto_load})
    for runtime, values in rates.items():
        samples[runtime].update(values)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": args.rounds, "steady_events": args.steady_events,
        "loads": {"null": args.null_load, "moto": args.moto_load},
        "seconds": round(time.monotonic() - started),
        "versions": versions(),
        "samples": samples,
        "zip_bytes": zip_sizes(),
        "callgrind": instructions_per_event(),
    }
    calls = OUT / "lifecycle-calls.json"
    if calls.exists():
        result["lifecycle_calls"] = json.loads(calls.read_text())
    (OUT / "results.json").write_text(json.dumps(result, indent=1))
    print(f"bench: {OUT / 'results.json'} in {result['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
