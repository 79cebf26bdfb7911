#!/usr/bin/env python3
"""Turns bench/.out/results.json into bench/results.md and bench/results.png."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BENCH = Path(__file__).resolve().parent
PEERS = ("node", "python")
RUNTIMES = ("rust", "node", "python")
NAMES = {"rust": "ours", "node": "Node.js", "python": "Python"}
SERVICES = (("dynamodb", "DynamoDB"), ("cognito-idp", "Cognito"), ("apigateway", "API Gateway"),
            ("cloudformation", "CloudFormation"), ("stripe", "Stripe"))
RENEWAL = ("customer.subscription.updated", "invoice.finalized", "invoice.paid",
           "invoice.payment_succeeded")
MIX_TITLES = {"customer.subscription.updated": "renewal: `customer.subscription.updated` (new period)",
              "invoice.finalized": "renewal: `invoice.finalized`",
              "invoice.paid": "renewal: `invoice.paid`",
              "invoice.payment_succeeded": "renewal: `invoice.payment_succeeded`",
              "plan_change": "plan change: `customer.subscription.updated` free → pro"}
# The targets for ours on a renewal event (the plan unchanged): calls at most.
RENEWAL_TARGET = {"dynamodb": 4, "cognito-idp": 0, "apigateway": 0, "stripe": 0}


def summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def cell(values: list[float], digits: int = 1) -> str:
    median, low, high = summary(values)
    return f"{median:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def ratio(samples: dict, peer: str, name: str, higher_is_better: bool = False) -> str:
    ours = statistics.median(samples["rust"][name])
    theirs = statistics.median(samples[peer][name])
    value = ours / theirs if higher_is_better else theirs / ours
    return f"{value:.1f}x"


def calls_cell(calls: list[dict], service: str) -> str:
    values = [c.get(service, 0) for c in calls]
    low, high, mean = min(values), max(values), statistics.mean(values)
    return f"{low}" if low == high else f"{mean:.1f} ({low}–{high})"


def mean_calls(calls: list[dict], service: str) -> float:
    return statistics.mean(c.get(service, 0) for c in calls)


# Counted at moto by operation: its calls' writes are told apart from its reads.
WRITES_KNOWN = ("dynamodb", "apigateway")


def calls_and_writes_cell(figures: dict, service: str) -> str:
    calls = calls_cell(figures["calls"], service)
    if service not in WRITES_KNOWN or not figures.get("writes"):
        return calls
    return f"{calls} (writes {calls_cell(figures['writes'], service)})"


def mix_section(result: dict) -> tuple[list[str], list[str]]:
    """The real mix's tables, and its lines for the targets."""
    mix = result.get("mix")
    if not mix:
        return ["Not measured in this run."], []
    samples = mix["samples"]
    kinds = [k for k in MIX_TITLES if all(k in samples[r] for r in RUNTIMES)]
    lines = [
        f"Against the local emulators (moto: DynamoDB, API Gateway, CloudFormation; cognito-local; "
        f"the Stripe front), one process of each runtime per round: {mix['renewals']} renewals of "
        f"a linked user on pro and {mix['plan_changes']} users going from free to pro per round "
        f"and runtime, after a warm-up renewal. Ours links and provisions its users from their "
        f"first subscription's `cognito_sub` and reads the catalogue as it does in production; "
        f"a peer's link is stored beforehand and its catalogue from `product.updated`. The Pro "
        f"price names no plan (real events name the product by id): the plan is the product's. "
        f"Calls are counted at the emulators around each invocation (moto's and the Stripe "
        f"front's counters, cognito-local's debug log); CPU is the process's, its threads' "
        f"schedstat around each invocation; latency is the harness's, from queuing the event "
        f"to the answer.",
        "",
        "### Calls per event",
        "",
        "| event | runtime | " + " | ".join(title for _, title in SERVICES) + " | outcomes |",
        "|---|---|" + "---|" * len(SERVICES) + "---|",
    ]
    for kind in kinds:
        for runtime in RUNTIMES:
            figures = samples[runtime][kind]
            outcomes = ", ".join(f"{o} {n}" for o, n in sorted(figures["outcomes"].items()))
            lines.append(f"| {MIX_TITLES[kind]} | {NAMES[runtime]} | " + " | ".join(
                calls_and_writes_cell(figures, service) for service, _ in SERVICES)
                + f" | {outcomes} |")
    lines += ["", "### CPU and latency per event", "",
              "| event | CPU µs: ours | Node.js | Python | Node/ours | Python/ours | "
              "latency ms: ours | Node.js | Python |",
              "|---|---|---|---|---|---|---|---|---|"]
    for kind in kinds:
        cpu = {r: samples[r][kind]["cpu_us"] for r in RUNTIMES}
        latency = {r: samples[r][kind]["latency_ms"] for r in RUNTIMES}
        lines.append(
            f"| {MIX_TITLES[kind]} | {cell(cpu['rust'], 0)} | {cell(cpu['node'], 0)} | "
            f"{cell(cpu['python'], 0)} | "
            f"{statistics.median(cpu['node']) / statistics.median(cpu['rust']):.1f}x | "
            f"{statistics.median(cpu['python']) / statistics.median(cpu['rust']):.1f}x | "
            f"{cell(latency['rust'])} | {cell(latency['node'])} | {cell(latency['python'])} |")
    lines += ["", "Peak RSS (VmHWM) after a round of the mix, MB: " + ", ".join(
        f"{NAMES[r]} {cell(samples[r]['rss_mb'])}" for r in RUNTIMES) + "."]

    targets = []
    for kind in [k for k in RENEWAL if k in kinds]:
        calls = samples["rust"][kind]["calls"]
        misses = []
        for service, most in RENEWAL_TARGET.items():
            worst = max(c.get(service, 0) for c in calls)
            if worst > most:
                misses.append(f"{dict(SERVICES)[service]} {worst} (target ≤ {most}: {worst - most} over)")
        targets.append(f"- Renewal, `{kind}`, ours: " + (
            "met (" + ", ".join(f"{dict(SERVICES)[s]} {max(c.get(s, 0) for c in calls)}"
                                for s in RENEWAL_TARGET) + ")" if not misses
            else "NOT met: " + "; ".join(misses)))
    if "plan_change" in kinds:
        ours = samples["rust"]["plan_change"]
        peer = samples["node"]["plan_change"]
        # Writes where moto tells them apart; Cognito's and Stripe's calls are all counted.
        compared = [(s, title, "writes" if s in WRITES_KNOWN and ours.get("writes") else "calls")
                    for s, title in SERVICES]
        extra = [f"{title} {what} {mean_calls(ours[what], s):.0f} vs {mean_calls(peer[what], s):.0f}"
                 for s, title, what in compared
                 if mean_calls(ours[what], s) > mean_calls(peer[what], s)]
        reads = [f"{title} {mean_calls(ours['calls'], s) - mean_calls(ours['writes'], s):.0f} vs "
                 f"{mean_calls(peer['calls'], s) - mean_calls(peer['writes'], s):.0f}"
                 for s, title in SERVICES if s in WRITES_KNOWN and ours.get("writes")]
        targets.append("- Plan change, only the writes that change something (the peers make "
                       "only those): " + ("met" if not extra else
                                          "NOT met, ours against the peers': " + ", ".join(extra))
                       + ("; reads, ours against the peers': " + ", ".join(reads) if reads else ""))
    for kind in kinds:
        ratio_node = (statistics.median(samples["node"][kind]["cpu_us"])
                      / statistics.median(samples["rust"][kind]["cpu_us"]))
        targets.append(f"- CPU per event ≤ 1/10 of Node's, {MIX_TITLES[kind]}: Node/ours "
                       f"{ratio_node:.1f}x — " + ("met" if ratio_node >= 10 else
                                                   f"NOT met ({10 / ratio_node:.1f}x short)"))
    return lines, targets


def main() -> None:
    result = json.loads((BENCH / ".out" / "results.json").read_text())
    samples = result["samples"]
    v = result["versions"]
    lines = [
        "# Benchmark: the Stripe webhook in Rust, Node.js and Python",
        "",
        f"Measured by `make bench` on {result['date']}, {result['rounds']} interleaved rounds "
        f"(the three runtimes in a new random order each round), {result['seconds']} s in all.",
        "",
        f"- Machine: {v['machine']}, Linux {v['kernel']} (not a Lambda: absolute times differ "
        "there, ratios are what carries over)",
        f"- Ours: {v['rustc']}, release profile, x86_64, `lambda_runtime`",
        f"- Node.js {v['node']}: " + ", ".join(f"{k} {val}" for k, val in sorted(v['node_packages'].items())),
        f"- {v['python']}: " + ", ".join(p for p in v['python_packages']
                                          if p.split('==')[0].lower() in ('awslambdaric', 'stripe', 'boto3', 'botocore')),
        f"- {v['valgrind']}",
        "",
        "Each figure: median (min–max) over the rounds; ratio = peer / ours (for throughput: "
        "ours / peer), so above 1x means ours is better.",
        "",
    ]
    if result.get("note"):
        lines += [f"**{result['note']}**", ""]
    lines += [
        "## What runs",
        "",
        "The same work in each: an API Gateway HTTP API event with a signed `product.updated` "
        "delivery; verify the `Stripe-Signature` (ours: HMAC-SHA256 with `hmac`/`sha2`/`subtle`; "
        "Node: `stripe.webhooks.constructEvent`; Python: `stripe.Webhook.construct_event`), parse "
        "the event, store the product (newer-only) with the event done (unless done or claimed "
        "before) in one TransactWriteItems, answer 200 (until 2026-12-02: a claim, the product "
        "and the completion, three PutItems; every runtime changed alike). Each creates its "
        "clients once at start (Stripe, DynamoDB, Cognito, API Gateway, CloudFormation), as its "
        "SDK's documentation recommends. Node: an ES module bundled and minified by esbuild into "
        "one CommonJS file (AWS SDK v3 inside; an ESM bundle fails on the SDKs' dynamic "
        "`require`s), run by `aws-lambda-ric`; Python: `stripe` and `boto3`, run "
        "by `awslambdaric`; ours: the `webhook` binary as deployed, run by `lambda_runtime`. All "
        "three poll bench-harness, a local Lambda Runtime API (bench/harness), one lane per runtime. "
        "Sources: bench/peers/node/src/webhook.mjs, bench/peers/python/webhook.py, "
        "crates/webhook.",
        "",
        "## 1. Cold start (against moto)",
        "",
        "| | ours | Node.js | Python | Node/ours | Python/ours | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, title in (("init_ms", "spawn → first `/next` (init), ms"),
                        ("first_response_ms", "spawn → first answer (init + first DynamoDB writes), ms")):
        lines.append(f"| {title} | {cell(samples['rust'][name])} | {cell(samples['node'][name])} | "
                     f"{cell(samples['python'][name])} | {ratio(samples, 'node', name)} | "
                     f"{ratio(samples, 'python', name)} | ≥10x Node, ≥6x Python |")
    lines += ["", "## 2. Peak RSS (VmHWM)", "",
              "| | ours | Node.js | Python | Node/ours | Python/ours | target |",
              "|---|---|---|---|---|---|---|"]
    for name, title in (("rss_1_mb", "after 1 invocation, MB"),
                        ("rss_1000_mb", f"after {result['steady_events']} invocations (null store), MB")):
        lines.append(f"| {title} | {cell(samples['rust'][name])} | {cell(samples['node'][name])} | "
                     f"{cell(samples['python'][name])} | {ratio(samples, 'node', name)} | "
                     f"{ratio(samples, 'python', name)} | ours ≤ 25 MB |")
    cg = result["callgrind"]
    lines += ["", "## 3. CPU per webhook event", "",
              f"CPU time of all the process's threads (kernel per-thread accounting, "
              f"/proc/<pid>/task/*/schedstat) over {result['steady_events'] - 1} events against "
              "the null store, divided by the events.", "",
              "| | ours | Node.js | Python | Node/ours | Python/ours | target |",
              "|---|---|---|---|---|---|---|",
              f"| µs per event | {cell(samples['rust']['cpu_us_per_event'])} | "
              f"{cell(samples['node']['cpu_us_per_event'])} | {cell(samples['python']['cpu_us_per_event'])} | "
              f"{ratio(samples, 'node', 'cpu_us_per_event')} | {ratio(samples, 'python', 'cpu_us_per_event')} | "
              "ours ≤ 1/10 of Node |",
              "",
              f"Instructions for our core alone (crates/webhook/examples/core_instructions.rs: the "
              f"handler with the in-memory store, no I/O), `valgrind --tool=callgrind`: "
              f"**{cg['instructions_per_event']:,.0f} instructions per event** (the difference "
              f"between {list(cg['instructions_at'])[0]} and {list(cg['instructions_at'])[1]} "
              f"events: {cg['instructions_at']}). Under valgrind `sha2` takes its portable path "
              "(no SHA-NI), so signature checks count more there than they cost on the CPU.",
              "",
              "Where our CPU goes: a `perf record` of the webhook over 3,000 events against the null "
              "store (this machine, 2026-11-21, a build with symbols) put the kernel's loopback TCP "
              "wake-ups and scheduling on top, then allocation and the AWS SDK's per-request work "
              "spread over many functions. Moving every function to tokio's current-thread runtime "
              "halved the sys time (one thread, no wake-ups between workers). A second one on "
              "2026-12-03, over 157 events of the real mix (section 7) against moto (fat LTO, "
              "symbols kept, `perf record -F 9999`, 4 DynamoDB requests per renewal): kernel 21%, "
              "glibc's malloc/free 8% and memmove 4%, the AWS SDK's orchestrator, config bag and "
              "type-erased runtime components (`aws_smithy_*`, `aws_sdk_dynamodb`, `aws_runtime`, "
              "`aws_sigv4`, their `type_id` lookups) 18%, tokio 5%, hyper, http and bytes 12%, "
              "`core`/`alloc` (drops, moves, formatting) 14%, tracing 1%; our own crates (billing-core, webhook) 4% and serde_json 1%. The "
              "CPU is per AWS request, not in our decisions: what pays is fewer requests per event "
              "(an invoice's event and `product.updated` are one since 2026-12-03, every runtime "
              "alike), which does not change the ratio to Node much since Node pays per request "
              "too.",
              "", "## 4. Webhook throughput, events per second", "",
              f"c processes of each runtime poll its lane; the harness queues {result['loads']['null']} "
              f"(null store) or {result['loads']['moto']} (moto) deliveries at once and times the last "
              "answer. Both stores and the harness share the machine's 2 cores with the functions: "
              "against moto, moto (one Python process) is the bottleneck for all three.", "",
              "| store, concurrency | ours | Node.js | Python | ours/Node | ours/Python |",
              "|---|---|---|---|---|---|"]
    for store in ("null", "moto"):
        for c in (1, 2, 4, 8):
            name = f"{store}_c{c}"
            lines.append(f"| {store}, {c} | {cell(samples['rust'][name], 0)} | "
                         f"{cell(samples['node'][name], 0)} | {cell(samples['python'][name], 0)} | "
                         f"{ratio(samples, 'node', name, True)} | {ratio(samples, 'python', name, True)} |")
    z = result["zip_bytes"]
    lines += ["", "## 5. Deployment package (zip) of the webhook", "",
              "| | bytes | peer/ours |", "|---|---|---|",
              f"| ours (`bootstrap`, release, x86_64, stripped) | {z['rust']:,} | |",
              f"| Node.js (esbuild bundle, minified, AWS SDK included) | {z['node']:,} | {z['node'] / z['rust']:.2f}x |",
              f"| Python (handler + `stripe`; boto3 from the runtime) | {z['python']:,} | {z['python'] / z['rust']:.2f}x |"]
    if "python_with_boto3" in z:
        lines.append(f"| Python with boto3 bundled | {z['python_with_boto3']:,} | "
                     f"{z['python_with_boto3'] / z['rust']:.2f}x |")
    lines += ["", "The arm64 zips of every function, from `make release`, are in the README."]
    calls = result.get("lifecycle_calls")
    lines += ["", "## 6. Upstream calls per lifecycle", ""]
    if calls:
        lines += [calls["what"], "", "| service | calls |", "|---|---|"]
        lines += [f"| {service} | {count} |" for service, count in calls["counts"].items()]
        lines += ["", calls.get("note", "")]
    else:
        lines.append("Not measured in this run.")
    mix_lines, mix_targets = mix_section(result)
    lines += ["", "## 7. The real mix: renewals and plan changes, per event", ""] + mix_lines
    lines += ["", "## Against the targets", ""]
    init_node = statistics.median(samples["node"]["init_ms"]) / statistics.median(samples["rust"]["init_ms"])
    init_py = statistics.median(samples["python"]["init_ms"]) / statistics.median(samples["rust"]["init_ms"])
    rss = max(statistics.median(samples["rust"]["rss_1_mb"]), statistics.median(samples["rust"]["rss_1000_mb"]))
    cpu = statistics.median(samples["rust"]["cpu_us_per_event"]) / statistics.median(samples["node"]["cpu_us_per_event"])
    first = {peer: statistics.median(samples[peer]["first_response_ms"])
             / statistics.median(samples["rust"]["first_response_ms"]) for peer in PEERS}
    lines += [
        f"- Cold start (init) ≥ 10x faster than Node: {init_node:.1f}x — {'met' if init_node >= 10 else 'NOT met'}",
        f"- Cold start (init) ≥ 6x faster than Python: {init_py:.1f}x — {'met' if init_py >= 6 else 'NOT met'}",
        f"- Cold start to the first answer (with moto's writes, the same for all): Node {first['node']:.1f}x "
        f"({'met' if first['node'] >= 10 else 'NOT met'}), Python {first['python']:.1f}x "
        f"({'met' if first['python'] >= 6 else 'NOT met'})",
        f"- Peak RSS ≤ 25 MB: {rss:.1f} MB — {'met' if rss <= 25 else 'NOT met'}",
        f"- CPU per event ≤ 1/10 of Node's (`product.updated`, null store): Node/ours {1 / cpu:.1f}x — "
        f"{'met' if cpu <= 0.1 else f'NOT met ({10 * cpu:.1f}x short)'}",
    ] + mix_targets + [""]
    (BENCH / "results.md").write_text("\n".join(lines))

    figure, axes = plt.subplots(1, 4, figsize=(16, 4))
    panels = (("init_ms", "cold start: init (ms)", False), ("rss_1000_mb", "peak RSS after 1000 (MB)", False),
              ("cpu_us_per_event", "CPU per event (µs)", False), ("null_c1", "events/s, null store, c=1", True))
    colours = {"rust": "#b7410e", "node": "#3c873a", "python": "#3572a5"}
    for axis, (name, title, _) in zip(axes, panels):
        medians = [statistics.median(samples[r][name]) for r in ("rust", "node", "python")]
        lows = [m - min(samples[r][name]) for m, r in zip(medians, ("rust", "node", "python"))]
        highs = [max(samples[r][name]) - m for m, r in zip(medians, ("rust", "node", "python"))]
        axis.bar(["ours (Rust)", "Node.js", "Python"], medians, yerr=[lows, highs], capsize=4,
                 color=[colours[r] for r in ("rust", "node", "python")])
        axis.set_title(title)
    figure.suptitle(f"Stripe webhook, median and min–max of {result['rounds']} rounds ({result['date']})")
    figure.tight_layout()
    figure.savefig(BENCH / "results.png", dpi=90)
    print(f"bench: wrote {BENCH / 'results.md'} and {BENCH / 'results.png'}")


if __name__ == "__main__":
    main()
