"""local/check-ops.py passes the project's template and fails it when an alarm, a dashboard metric,
the alarm actions or tracing go missing or read a metric the functions do not write."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest

LOCAL_DIR = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("check_ops", LOCAL_DIR / "check-ops.py")
check_ops = importlib.util.module_from_spec(SPEC)
sys.modules["check_ops"] = check_ops
SPEC.loader.exec_module(check_ops)

TEMPLATE = check_ops.load_template(LOCAL_DIR.parent / "template.yaml")


def findings(template: dict) -> list[str]:
    return check_ops.Check(template).run()


def template() -> dict:
    return copy.deepcopy(TEMPLATE)


def alarm_reading(t: dict, metric: str, namespace: str = check_ops.NAMESPACE, **dims) -> str:
    """The logical id of the one alarm that reads this metric with these dimensions."""
    names = [name for name, alarm in check_ops.resources_of(t, "AWS::CloudWatch::Alarm").items()
             if check_ops.has(check_ops.alarm_metrics(alarm["Properties"]), metric, namespace, **dims)]
    assert len(names) == 1, names
    return names[0]


def test_the_projects_template_passes(capsys):
    status = check_ops.main(["check-ops.py", str(LOCAL_DIR.parent / "template.yaml")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "0 findings" in out


@pytest.mark.parametrize("metric, dims, finding", [
    ("WebhookEvents", {"Function": "webhook", "Outcome": "failed"}, "no alarm on webhook deliveries answered 5xx"),
    ("WebhookEvents", {"Function": "webhook-eventbridge", "Outcome": "unreadable"}, "no alarm on any unreadable Stripe event"),
    ("ApproximateNumberOfMessagesVisible", {"namespace": "AWS/SQS", "QueueName": {"Fn::GetAtt": ["StripeEventsDeadLetterQueue", "QueueName"]}},
     "no alarm on EventBridge dead-letter queue not empty"),
    ("TriggerOutcome", {"Function": "post-confirmation", "Outcome": "failed"}, "no alarm on sign-up trigger failures"),
    ("TriggerLatency", {"Function": "post-confirmation"}, "no alarm on sign-up trigger p99 latency"),
    ("ReconcilerCursorAge", {"Function": "reconciler"}, "no alarm on reconciler cursor older than ReconcilerCursorAgeThresholdSeconds"),
    ("ReconcilerCursorTooOld", {"Function": "reconciler"}, "no alarm on reconciler cursor older than Stripe's 30 days"),
    ("ApiKeyQuotaReached", {"Function": "checkout"}, "no alarm on API key quota reached"),
])
def test_removing_a_required_alarm_fails(metric, dims, finding):
    t = template()
    del t["Resources"][alarm_reading(t, metric, **dims)]
    assert any(finding in f for f in findings(t)), findings(t)


@pytest.mark.parametrize("function", sorted(check_ops.resources_of(TEMPLATE, "AWS::Serverless::Function")))
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_removing_a_functions_lambda_alarm_fails(function, metric):
    t = template()
    del t["Resources"][alarm_reading(t, metric, namespace="AWS/Lambda", FunctionName={"Ref": function})]
    assert f"no alarm on Lambda {metric} of {function}" in " | ".join(findings(t))


def test_a_new_function_without_alarms_fails():
    t = template()
    t["Resources"]["ExportFunction"] = {"Type": "AWS::Serverless::Function", "Properties": {}}
    found = findings(t)
    assert "no alarm on Lambda Errors of ExportFunction" in found
    assert "no alarm on Lambda Throttles of ExportFunction" in found
    assert "dashboard OperationsDashboard does not show Lambda Errors of ExportFunction" in found


def test_a_lambda_alarm_must_share_its_functions_condition():
    t = template()
    name = alarm_reading(t, "Errors", namespace="AWS/Lambda", FunctionName={"Ref": "WebhookEventBridgeFunction"})
    del t["Resources"][name]["Condition"]
    assert ("no alarm on Lambda Errors of WebhookEventBridgeFunction under its condition EventBridgeEnabled"
            in findings(t))


@pytest.mark.parametrize("change, finding", [
    ({"MetricName": "WebhookEvent"}, "WebhookEvent is not a metric the functions write"),
    ({"Dimensions": [{"Name": "Function", "Value": "webhooks"}, {"Name": "Outcome", "Value": "unreadable"}]},
     "WebhookEvents is written by webhook, webhook-eventbridge, not 'webhooks'"),
    ({"Dimensions": [{"Name": "Function", "Value": "webhook"}, {"Name": "Outcome", "Value": "failure"}]},
     "WebhookEvents: Outcome='failure' is none of applied, duplicate"),
    ({"Dimensions": [{"Name": "Function", "Value": "webhook"}, {"Name": "Action", "Value": "key_created"}]},
     "WebhookEvents has the dimensions [Function, Outcome] only"),
])
def test_an_alarm_reading_a_metric_nobody_writes_fails(change, finding):
    t = template()
    name = alarm_reading(t, "WebhookEvents", Function="webhook", Outcome="unreadable")
    t["Resources"][name]["Properties"]["Metrics"][0]["MetricStat"]["Metric"].update(change)
    assert any(f.startswith(f"alarm {name} reads nothing: {finding}") for f in findings(t)), findings(t)


@pytest.mark.parametrize("key", ["AlarmActions", "OKActions"])
def test_an_alarm_without_the_topic_fails(key):
    t = template()
    del t["Resources"]["TriggerLatencyAlarm"]["Properties"][key]
    assert any(f.startswith(f"alarm TriggerLatencyAlarm: {key} must notify") for f in findings(t))


def test_the_trigger_latency_alarm_must_stay_under_cognitos_5_seconds():
    t = template()
    t["Resources"]["TriggerLatencyAlarm"]["Properties"]["Threshold"] = 5000
    assert any("no alarm on sign-up trigger p99 latency" in f for f in findings(t))


def test_the_topic_and_its_parameters_are_required():
    t = template()
    del t["Resources"]["AlarmEmailSubscription"]
    t["Parameters"]["AlarmTopicArn"]["Default"] = "arn:aws:sns:us-east-1:123456789012:alarms"
    found = findings(t)
    assert "no e-mail subscription of AlarmEmail to AlarmTopic under CreateAlarmTopic" in found
    assert "parameter AlarmTopicArn: missing, or its Default is not empty (optional)" in found


def test_tracing_must_follow_enable_tracing():
    t = template()
    t["Globals"]["Function"]["Tracing"] = "Active"
    assert "Globals Function Tracing must be !If [TracingEnabled, Active, PassThrough]" in findings(t)


def dashboard_without(t: dict, dropped) -> None:
    """Drops the dashboard's metric rows for which dropped(row) is true."""
    resource = t["Resources"]["OperationsDashboard"]["Properties"]
    body, variables = resource["DashboardBody"]["Fn::Sub"]
    document = json.loads(body.replace("${ReconcilerCursorAgeThresholdSeconds}", "1800"))
    for widget in document["widgets"]:
        metrics = widget["properties"].get("metrics")
        if metrics is not None:
            widget["properties"]["metrics"] = [row for row in metrics if not dropped(row)]
    resource["DashboardBody"]["Fn::Sub"] = [json.dumps(document), variables]


def test_the_dashboard_must_show_every_metric_of_the_contract():
    t = template()
    dashboard_without(t, lambda row: row[1] == "ReconcilerCursorAge")
    assert "dashboard OperationsDashboard does not show ReconcilerCursorAge of reconciler" in findings(t)


def test_the_dashboard_must_show_every_outcome():
    t = template()
    dashboard_without(t, lambda row: row[1] == "WebhookEvents" and row[3] == "webhook-eventbridge"
                      and "stale" in row)
    assert ("dashboard OperationsDashboard does not show WebhookEvents of webhook-eventbridge for "
            "Outcome stale") in findings(t)


def test_the_dashboard_must_show_every_functions_lambda_metrics():
    t = template()
    dashboard_without(t, lambda row: row[0] == "AWS/Lambda" and row[3] == "${EventBridgeFunctionName}")
    assert "dashboard OperationsDashboard does not show Lambda Throttles of WebhookEventBridgeFunction" in findings(t)


def test_a_dashboard_metric_nobody_writes_fails():
    t = template()
    resource = t["Resources"]["OperationsDashboard"]["Properties"]
    body, variables = resource["DashboardBody"]["Fn::Sub"]
    resource["DashboardBody"]["Fn::Sub"] = [body.replace('"UsageSlotsStuck"', '"UsageSlotStuck"', 1), variables]
    assert any("UsageSlotStuck is not a metric the functions write" in f for f in findings(t))


def test_the_row_shorthand_is_refused():
    t = template()
    resource = t["Resources"]["OperationsDashboard"]["Properties"]
    body, variables = resource["DashboardBody"]["Fn::Sub"]
    row = '["CognitoStripeBilling", "CheckoutSuccessReturns", "Function", "checkout", {"stat": "Sum", "label": "success returns"}]'
    assert row in body
    resource["DashboardBody"]["Fn::Sub"] = [body.replace(row, '["...", "CheckoutSuccessReturns", {"stat": "Sum"}]'), variables]
    assert any("write every metric row in full" in f for f in findings(t))
