#!/usr/bin/env python3
"""Operations check of template.yaml: the alarms, the dashboard and tracing of issue 15 are
there, and read the metrics the functions write.

    python3 local/check-ops.py [template.yaml]

The functions write CloudWatch embedded-metric lines under one namespace; CONTRACT below is what
they write (metric, the functions that write it, and the one breakdown dimension some have
besides Function). A metric named elsewhere in the template, or a dimension value not in the
contract, reads nothing: CloudWatch does not say so, this check does. It checks:

- every metric of the template's alarms and dashboard under the namespace is in the contract;
- the dashboard shows every metric of the contract for every function that writes it, each
  breakdown value included, and Lambda's own metrics for every function of the template;
- each required alarm (REQUIRED_ALARMS) exists, and every AWS::Serverless::Function has a Lambda
  Errors and a Throttles alarm under the function's own condition;
- every alarm notifies the alarm topic when there is one (ALARM_ACTIONS) and back to OK;
- the parameters, conditions and SNS resources behind that, and tracing in the Globals.

Prints what it checked and the findings; exits 1 when there is a finding. Needs Python 3 and
PyYAML (local/.venv and local/.venv-sam have both); local/tests/test_check_ops.py tests it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

LOCAL_DIR = Path(__file__).resolve().parent
# The CloudFormation YAML loader of check-policies.py (short forms as long forms).
_SPEC = importlib.util.spec_from_file_location("check_policies", LOCAL_DIR / "check-policies.py")
check_policies = sys.modules.setdefault("check_policies", importlib.util.module_from_spec(_SPEC))
if not hasattr(check_policies, "load_template"):
    _SPEC.loader.exec_module(check_policies)
load_template = check_policies.load_template

NAMESPACE = "CognitoStripeBilling"
WEBHOOK_OUTCOMES = ("applied", "duplicate", "stale", "ignored", "unmapped", "unreadable", "failed")
PROVISIONING_ACTIONS = ("plan_changed", "key_created", "key_moved", "key_enabled", "key_disabled",
                        "key_rotated", "key_deleted", "stack_created", "stack_deleted")
TRIGGER_OUTCOMES = ("linked", "already_linked", "failed")
WEBHOOKS = ("webhook", "webhook-eventbridge")
# The portal provisions a key on first need and rotates keys; the reconciler (webhook-eventbridge)
# deletes retired ones.
PROVISIONERS = ("webhook", "webhook-eventbridge", "checkout", "portal")


@dataclass(frozen=True)
class Metric:
    """A metric of the contract: who writes it, and its breakdown (a second dimension and its
    values) when it has one. Every metric is also written with the dimension Function alone."""
    functions: tuple[str, ...]
    breakdown: tuple[str, tuple[str, ...]] | None = None


CONTRACT: dict[str, Metric] = {
    "WebhookEvents": Metric(WEBHOOKS, ("Outcome", WEBHOOK_OUTCOMES)),
    "WebhookLatency": Metric(WEBHOOKS),
    "ProvisioningActions": Metric(PROVISIONERS, ("Action", PROVISIONING_ACTIONS)),
    "ProvisioningFailures": Metric(PROVISIONERS),
    "ApiKeyQuotaReached": Metric(PROVISIONERS),
    "TriggerOutcome": Metric(("post-confirmation",), ("Outcome", TRIGGER_OUTCOMES)),
    "TriggerLatency": Metric(("post-confirmation",)),
    "CheckoutSessionsCreated": Metric(("checkout",)),
    "CheckoutSuccessReturns": Metric(("checkout",)),
    "ReconcilerEventsRepaired": Metric(("reconciler",)),
    "ReconcilerReviews": Metric(("reconciler",)),
    "ReconcilerCursorAge": Metric(("reconciler",)),
    "ReconcilerCursorTooOld": Metric(("reconciler",)),
    "ReconcilerIncomplete": Metric(("reconciler",)),
    "UsageCallsReported": Metric(("usage-reporter",)),
    "UsageCallsTooLate": Metric(("usage-reporter",)),
    "UsageSlotsUnbillable": Metric(("usage-reporter",)),
    "UsageSlotsStuck": Metric(("usage-reporter",)),
}

TOPIC = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
ALARM_ACTIONS = {"Fn::If": ["AlarmNotifications", [TOPIC], {"Ref": "AWS::NoValue"}]}
TRACING = {"Fn::If": ["TracingEnabled", "Active", "PassThrough"]}


@dataclass(frozen=True)
class MetricRef:
    """One metric an alarm or a widget reads."""
    namespace: str
    name: str
    dimensions: tuple[tuple[str, object], ...]
    stat: str | None = None

    def dims(self) -> dict:
        return dict(self.dimensions)

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.dimensions)
        return f"{self.namespace} {self.name} [{shown}]"


def contract_problem(ref: MetricRef) -> str | None:
    """Why a metric of our namespace reads nothing, or None when the contract has it."""
    metric = CONTRACT.get(ref.name)
    if metric is None:
        return f"{ref.name} is not a metric the functions write"
    dims = ref.dims()
    if dims.get("Function") not in metric.functions:
        return f"{ref.name} is written by {', '.join(metric.functions)}, not {dims.get('Function')!r}"
    extra = sorted(set(dims) - {"Function"})
    if not extra:
        return None
    if metric.breakdown is None or extra != [metric.breakdown[0]]:
        allowed = f"[Function, {metric.breakdown[0]}]" if metric.breakdown else "[Function]"
        return f"{ref.name} has the dimensions {allowed} only, not {['Function', *extra]}"
    name, values = metric.breakdown
    if dims[name] not in values:
        return f"{ref.name}: {name}={dims[name]!r} is none of {', '.join(values)}"
    return None


# --- reading the template ----------------------------------------------------------------------

def resources_of(template: dict, kind: str) -> dict[str, dict]:
    return {name: resource for name, resource in (template.get("Resources") or {}).items()
            if isinstance(resource, dict) and resource.get("Type") == kind}


def normal(value):
    """!GetAtt A.B in its list form, ["A", "B"], whichever form the template used."""
    if isinstance(value, dict) and isinstance(value.get("Fn::GetAtt"), str):
        return {"Fn::GetAtt": value["Fn::GetAtt"].split(".", 1)}
    return value


def alarm_metrics(properties: dict) -> list[MetricRef]:
    """The metrics an alarm reads: its one metric, or the MetricStats of its metric math."""
    def dimensions(items) -> tuple:
        return tuple((d.get("Name"), normal(d.get("Value"))) for d in items or [])

    if "MetricName" in properties:
        stat = properties.get("ExtendedStatistic") or properties.get("Statistic")
        return [MetricRef(properties.get("Namespace"), properties["MetricName"],
                          dimensions(properties.get("Dimensions")), stat)]
    found = []
    for query in properties.get("Metrics") or []:
        stat = query.get("MetricStat")
        if stat:
            metric = stat.get("Metric") or {}
            found.append(MetricRef(metric.get("Namespace"), metric.get("MetricName"),
                                   dimensions(metric.get("Dimensions")), stat.get("Stat")))
    return found


SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def dashboard_body(resource: dict) -> tuple[dict, dict]:
    """The dashboard's JSON, with each ${Name} of its Fn::Sub left as the name (a bare one, a
    number, as 0), and the Fn::Sub's variable map."""
    body = resource.get("Properties", {}).get("DashboardBody")
    variables: dict = {}
    if isinstance(body, dict) and "Fn::Sub" in body:
        body = body["Fn::Sub"]
        if isinstance(body, list):
            body, variables = body[0], body[1] if len(body) > 1 else {}
    if not isinstance(body, str):
        raise ValueError("DashboardBody must be a JSON string (or !Sub of one)")
    body = re.sub(r'(?<=[:\[,]\s)\$\{[^}]+\}', "0", body)
    body = SUB_VARIABLE.sub(lambda m: m.group(1), body)
    return json.loads(body), variables


def widget_metrics(widget: dict) -> list[MetricRef]:
    """The metrics of a metric widget, written in full: [namespace, name, dim, value, ...,
    {options}]. The "..." shorthand (repeat the row above) is refused: write every row whole."""
    found = []
    for row in (widget.get("properties") or {}).get("metrics") or []:
        options = row[-1] if row and isinstance(row[-1], dict) else {}
        fields = row[:-1] if options else row
        if "..." in fields or "." in fields:
            raise ValueError(f"widget {widget.get('properties', {}).get('title')!r}: write every "
                             "metric row in full, without the ... shorthand")
        if "expression" in options:
            continue
        namespace, name, rest = fields[0], fields[1], fields[2:]
        found.append(MetricRef(namespace, name, tuple(zip(rest[::2], rest[1::2])), options.get("stat")))
    return found


# --- the checks ------------------------------------------------------------------------------

def has(refs: list[MetricRef], name: str, namespace: str = NAMESPACE, **dims) -> bool:
    return any(r.namespace == namespace and r.name == name and r.dims() == dims for r in refs)


@dataclass(frozen=True)
class Required:
    """An alarm the template must have: what it is for, and how to recognise it."""
    purpose: str
    matches: Callable[[dict, list[MetricRef]], bool]


REQUIRED_ALARMS = [
    Required("webhook deliveries answered 5xx above a rate (WebhookEvents failed / all)",
             lambda p, refs: has(refs, "WebhookEvents", Function="webhook", Outcome="failed")
             and has(refs, "WebhookEvents", Function="webhook") and "Metrics" in p),
    Required("any unreadable Stripe event (webhook and EventBridge)",
             lambda p, refs: has(refs, "WebhookEvents", Function="webhook", Outcome="unreadable")
             and has(refs, "WebhookEvents", Function="webhook-eventbridge", Outcome="unreadable")),
    Required("EventBridge dead-letter queue not empty",
             lambda p, refs: has(refs, "ApproximateNumberOfMessagesVisible", "AWS/SQS", QueueName={
                 "Fn::GetAtt": ["StripeEventsDeadLetterQueue", "QueueName"]})),
    Required("sign-up trigger failures (TriggerOutcome failed)",
             lambda p, refs: has(refs, "TriggerOutcome", Function="post-confirmation", Outcome="failed")),
    Required("sign-up trigger p99 latency near Cognito's 5 s",
             lambda p, refs: has(refs, "TriggerLatency", Function="post-confirmation")
             and p.get("ExtendedStatistic") == "p99"
             and isinstance(p.get("Threshold"), (int, float)) and 0 < p["Threshold"] < 5000),
    Required("reconciler cursor older than ReconcilerCursorAgeThresholdSeconds",
             lambda p, refs: has(refs, "ReconcilerCursorAge", Function="reconciler")
             and p.get("Threshold") == {"Ref": "ReconcilerCursorAgeThresholdSeconds"}),
    Required("reconciler cursor older than Stripe's 30 days of events",
             lambda p, refs: has(refs, "ReconcilerCursorTooOld", Function="reconciler")),
    Required("API key quota reached (webhook, EventBridge, checkout)",
             lambda p, refs: all(has(refs, "ApiKeyQuotaReached", Function=f) for f in PROVISIONERS)),
]


class Check:
    def __init__(self, template: dict) -> None:
        self.template = template
        self.findings: list[str] = []
        self.notes: list[str] = []

    def finding(self, text: str) -> None:
        self.findings.append(text)

    def ok(self, text: str) -> None:
        self.notes.append(text)

    def run(self) -> list[str]:
        self.alarms = resources_of(self.template, "AWS::CloudWatch::Alarm")
        self.functions = resources_of(self.template, "AWS::Serverless::Function")
        self.check_parameters_and_topic()
        self.check_tracing()
        self.check_alarms()
        self.check_dashboard()
        return self.findings

    def check_parameters_and_topic(self) -> None:
        parameters = self.template.get("Parameters") or {}
        for name in ("AlarmEmail", "AlarmTopicArn"):
            if name not in parameters or parameters[name].get("Default") != "":
                self.finding(f"parameter {name}: missing, or its Default is not empty (optional)")
        if "ReconcilerCursorAgeThresholdSeconds" not in parameters:
            self.finding("parameter ReconcilerCursorAgeThresholdSeconds is missing")
        tracing = parameters.get("EnableTracing") or {}
        if sorted(tracing.get("AllowedValues") or []) != ["false", "true"] or tracing.get("Default") != "false":
            self.finding("parameter EnableTracing must allow true and false, default false")
        conditions = self.template.get("Conditions") or {}
        for name in ("AlarmNotifications", "CreateAlarmTopic", "TracingEnabled"):
            if name not in conditions:
                self.finding(f"condition {name} is missing")
        topic = (self.template.get("Resources") or {}).get("AlarmTopic") or {}
        if topic.get("Type") != "AWS::SNS::Topic" or topic.get("Condition") != "CreateAlarmTopic":
            self.finding("AlarmTopic: an AWS::SNS::Topic under the condition CreateAlarmTopic")
        subscriptions = [r for r in resources_of(self.template, "AWS::SNS::Subscription").values()
                         if r.get("Properties", {}).get("Endpoint") == {"Ref": "AlarmEmail"}]
        if not any(r.get("Properties", {}).get("Protocol") == "email"
                   and r.get("Properties", {}).get("TopicArn") == {"Ref": "AlarmTopic"}
                   and r.get("Condition") == "CreateAlarmTopic" for r in subscriptions):
            self.finding("no e-mail subscription of AlarmEmail to AlarmTopic under CreateAlarmTopic")
        else:
            self.ok("alarm topic: AlarmEmail's subscription, or AlarmTopicArn")

    def check_tracing(self) -> None:
        function_globals = (self.template.get("Globals") or {}).get("Function") or {}
        if function_globals.get("Tracing") != TRACING:
            self.finding("Globals Function Tracing must be !If [TracingEnabled, Active, PassThrough]")
        else:
            self.ok("tracing: Globals Function Tracing follows EnableTracing")

    def check_alarms(self) -> None:
        metrics_of = {}
        for name, alarm in self.alarms.items():
            properties = alarm.get("Properties") or {}
            refs = alarm_metrics(properties)
            metrics_of[name] = (properties, refs)
            if not refs:
                self.finding(f"alarm {name} reads no metric")
            for ref in refs:
                if ref.namespace == NAMESPACE and (problem := contract_problem(ref)):
                    self.finding(f"alarm {name} reads nothing: {problem}")
            for key in ("AlarmActions", "OKActions"):
                if properties.get(key) != ALARM_ACTIONS:
                    self.finding(f"alarm {name}: {key} must notify the alarm topic when there is one "
                                 "(!If [AlarmNotifications, [!If [CreateAlarmTopic, !Ref AlarmTopic, "
                                 "!Ref AlarmTopicArn]], !Ref AWS::NoValue])")
        for required in REQUIRED_ALARMS:
            matching = [n for n, (p, refs) in metrics_of.items() if required.matches(p, refs)]
            if matching:
                self.ok(f"alarm {', '.join(matching)}: {required.purpose}")
            else:
                self.finding(f"no alarm on {required.purpose}")
        for function, resource in self.functions.items():
            for metric in ("Errors", "Throttles"):
                matching = [
                    n for n, (p, refs) in metrics_of.items()
                    if has(refs, metric, "AWS/Lambda", FunctionName={"Ref": function})
                    and self.alarms[n].get("Condition") == resource.get("Condition")]
                if matching:
                    self.ok(f"alarm {matching[0]}: Lambda {metric} of {function}")
                else:
                    condition = resource.get("Condition")
                    under = f" under its condition {condition}" if condition else ""
                    self.finding(f"no alarm on Lambda {metric} of {function}{under}")

    def check_dashboard(self) -> None:
        dashboards = resources_of(self.template, "AWS::CloudWatch::Dashboard")
        if len(dashboards) != 1:
            self.finding(f"{len(dashboards)} dashboards, expected one")
            return
        name, resource = next(iter(dashboards.items()))
        try:
            body, variables = dashboard_body(resource)
            refs = [ref for widget in body.get("widgets") or [] if widget.get("type") == "metric"
                    for ref in widget_metrics(widget)]
        except (ValueError, TypeError, IndexError) as error:
            self.finding(f"dashboard {name}: {error}")
            return
        for ref in refs:
            if ref.namespace == NAMESPACE and (problem := contract_problem(ref)):
                self.finding(f"dashboard {name} shows nothing for {ref}: {problem}")
        shown = 0
        for metric_name, metric in CONTRACT.items():
            for function in metric.functions:
                ours = [r for r in refs if r.namespace == NAMESPACE and r.name == metric_name
                        and r.dims().get("Function") == function]
                if not ours:
                    self.finding(f"dashboard {name} does not show {metric_name} of {function}")
                    continue
                shown += 1
                if metric.breakdown:
                    dimension, values = metric.breakdown
                    missing = [v for v in values if not any(r.dims().get(dimension) == v for r in ours)]
                    if missing:
                        self.finding(f"dashboard {name} does not show {metric_name} of {function} "
                                     f"for {dimension} {', '.join(missing)}")
        self.ok(f"dashboard {name}: {shown} metric and function pairs of the contract, "
                f"{len(refs)} metrics in all")
        for function in self.functions:
            shown_as = {f"{function}"} | {var for var, value in variables.items()
                                          if {"Ref": function} in check_policies.leaves(value)}
            for metric in ("Errors", "Throttles"):
                if not any(r.namespace == "AWS/Lambda" and r.name == metric
                           and r.dims().get("FunctionName") in shown_as for r in refs):
                    self.finding(f"dashboard {name} does not show Lambda {metric} of {function}")


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else LOCAL_DIR.parent / "template.yaml"
    print(f"check-ops: {path}")
    check = Check(load_template(path))
    findings = check.run()
    for note in check.notes:
        print(f"  ok   {note}")
    for finding in findings:
        print(f"  FAIL {finding}")
    print(f"check-ops: {len(check.alarms)} alarms, {len(check.functions)} functions, "
          f"{len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
