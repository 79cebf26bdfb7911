#!/usr/bin/env python3
"""Least privilege check of template.yaml: fails when an IAM policy statement allows a write
action on every resource (`Resource: "*"`, or a `NotResource`).

    python3 local/check-policies.py [template.yaml]

Walks every identity policy the template writes: the inline `Statement`s of the functions'
`Policies` (SAM policy templates and managed policy references are listed, not opened), the
`PolicyDocument` of AWS::IAM::ManagedPolicy and AWS::IAM::Policy, and the `Policies` of
AWS::IAM::Role (and User, Group). Both branches of a `!If` are checked. A write action is any
action but Get*, List* and Describe* (case-insensitive, so `apigateway:GET` reads), including
wildcards such as `s3:*` and `NotAction`; `Deny` statements grant nothing and are skipped.

Prints every statement it looked at, then the findings. Needs Python 3 and PyYAML (both in
local/.venv and local/.venv-sam).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

# Actions that have no resource-level permissions, so `Resource: "*"` is the only way to grant
# them. Add one only with the reason; none of them is used by the template today.
ALLOWED_ON_EVERY_RESOURCE = {
    # X-Ray tracing (Tracing: Active) has no resource types.
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    # Custom metrics: no resource types; narrow it with the cloudwatch:namespace condition.
    "cloudwatch:PutMetricData",
}

READ_PREFIXES = ("get", "list", "describe")
POLICY_HOLDERS = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")
SAM_WITH_POLICIES = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
NO_VALUE = {"Ref": "AWS::NoValue"}


class TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation's short forms (!Sub, !If, !Ref, !GetAtt...) as their long forms."""


def _short_form(loader: TemplateLoader, suffix: str, node: yaml.Node) -> dict:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


TemplateLoader.add_multi_constructor("!", _short_form)


def load_template(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=TemplateLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class Finding:
    where: str
    sid: str
    actions: list[str]

    def __str__(self) -> str:
        return f"{self.where} {self.sid}: {', '.join(self.actions)} on every resource"


def branches(value):
    """The alternatives a value may take: both sides of a Fn::If, never AWS::NoValue."""
    if value == NO_VALUE:
        return []
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _condition, when_true, when_false = value["Fn::If"]
        return branches(when_true) + branches(when_false)
    return [value]


def leaves(value) -> list:
    """Every string a list (or an intrinsic function) may yield, intrinsics kept whole."""
    found = []
    for alternative in branches(value):
        if isinstance(alternative, list):
            for item in alternative:
                found += leaves(item)
        else:
            found.append(alternative)
    return found


def is_read(action: str) -> bool:
    service, _, name = action.partition(":")
    if not service or not name:
        return False
    if "*" in name.rstrip("*") or name == "*":
        return False
    return name.lower().startswith(READ_PREFIXES)


def statements_of(document) -> list:
    found = []
    for alternative in branches(document):
        if not isinstance(alternative, dict):
            continue
        for statement in leaves(alternative.get("Statement", [])):
            found += branches(statement)
    return found


class Checker:
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.statements = 0
        self.policies = 0

    def document(self, where: str, document) -> None:
        self.policies += 1
        for index, statement in enumerate(statements_of(document)):
            if not isinstance(statement, dict):
                print(f"  ?    {where} statement {index}: not a mapping, skipped")
                continue
            self.statement(where, index, statement)

    def statement(self, where: str, index: int, statement: dict) -> None:
        self.statements += 1
        sid = str(statement.get("Sid", f"statement {index}"))
        effect = statement.get("Effect")
        if "NotAction" in statement:
            actions = [f"NotAction {a}" for a in leaves(statement["NotAction"])]
            writes = actions
        else:
            actions = [a if isinstance(a, str) else repr(a) for a in leaves(statement.get("Action", []))]
            writes = [a for a in actions if not is_read(a) and a not in ALLOWED_ON_EVERY_RESOURCE]
        if "NotResource" in statement:
            every_resource = True
            resources = ["NotResource ..."]
        else:
            resources = leaves(statement.get("Resource", []))
            every_resource = any(r == "*" or r == {"Fn::Sub": "*"} for r in resources)
        scope = "every resource" if every_resource else f"{len(resources)} resource(s)"
        if effect == "Deny":
            print(f"  deny {where} {sid}: {', '.join(actions)} on {scope}")
            return
        if every_resource and writes:
            self.findings.append(Finding(where, sid, writes))
            print(f"  FAIL {where} {sid}: {', '.join(actions)} on {scope}")
        else:
            print(f"  ok   {where} {sid}: {', '.join(actions)} on {scope}")

    def resource(self, name: str, resource: dict) -> None:
        kind = resource.get("Type", "")
        properties = resource.get("Properties") or {}
        if kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            self.document(name, properties.get("PolicyDocument"))
        elif kind in POLICY_HOLDERS:
            for policy in leaves(properties.get("Policies", [])):
                label = f"{name}/{policy.get('PolicyName', '?')}" if isinstance(policy, dict) else name
                self.document(label, policy.get("PolicyDocument") if isinstance(policy, dict) else None)
            for arn in leaves(properties.get("ManagedPolicyArns", [])):
                print(f"  note {name}: attaches managed policy {arn!r} (not opened)")
        elif kind in SAM_WITH_POLICIES:
            self.sam_policies(name, properties.get("Policies", []))

    def sam_policies(self, name: str, policies) -> None:
        for index, policy in enumerate(leaves(policies)):
            if isinstance(policy, dict) and "Statement" in policy:
                self.document(f"{name}/Policies[{index}]", policy)
            elif isinstance(policy, dict) and len(policy) == 1 and not next(iter(policy)).startswith(("Ref", "Fn::")):
                print(f"  note {name}: SAM policy template {next(iter(policy))} (scoped by SAM)")
            else:
                print(f"  note {name}: managed policy {policy!r} (checked where the template defines it)")

    def template(self, template: dict) -> None:
        for name, resource in (template.get("Resources") or {}).items():
            if isinstance(resource, dict):
                self.resource(name, resource)


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "template.yaml"
    print(f"check-policies: {path}")
    checker = Checker()
    checker.template(load_template(path))
    print(f"check-policies: {checker.policies} policies, {checker.statements} statements")
    if checker.findings:
        print("check-policies: write actions allowed on every resource (Resource \"*\"):")
        for finding in checker.findings:
            print(f"  {finding}")
        return 1
    print("check-policies: no write action on every resource")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
