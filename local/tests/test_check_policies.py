"""local/check-policies.py must fail on a write action allowed on every resource, wherever the
template hides it, and pass the project's own template."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

LOCAL_DIR = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("check_policies", LOCAL_DIR / "check-policies.py")
check_policies = importlib.util.module_from_spec(SPEC)
sys.modules["check_policies"] = check_policies
SPEC.loader.exec_module(check_policies)


def run(tmp_path: Path, capsys, resources: str) -> tuple[int, str]:
    template = tmp_path / "template.yaml"
    template.write_text("Resources:\n" + textwrap.indent(textwrap.dedent(resources), "  "))
    status = check_policies.main(["check-policies.py", str(template)])
    return status, capsys.readouterr().out


def test_the_projects_template_passes(capsys):
    status = check_policies.main(["check-policies.py", str(LOCAL_DIR.parent / "template.yaml")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "no write action on every resource" in out


def test_a_function_writing_every_bucket_fails_and_is_named(tmp_path, capsys):
    status, out = run(tmp_path, capsys, """
        Fn:
          Type: AWS::Serverless::Function
          Properties:
            Policies:
              - Statement:
                  - Sid: TooWide
                    Effect: Allow
                    Action: [s3:GetObject, s3:PutObject]
                    Resource: "*"
        """)
    assert status == 1
    assert "Fn/Policies[0] TooWide: s3:PutObject on every resource" in out


def test_a_wide_grant_behind_an_if_in_a_managed_policy_fails(tmp_path, capsys):
    status, out = run(tmp_path, capsys, """
        Policy:
          Type: AWS::IAM::ManagedPolicy
          Properties:
            PolicyDocument:
              Version: "2012-10-17"
              Statement:
                - !If
                  - SomeCondition
                  - Sid: Hidden
                    Effect: Allow
                    Action: !If [Other, dynamodb:DeleteItem, dynamodb:GetItem]
                    Resource: [!Sub "arn:${AWS::Partition}:s3:::x", "*"]
                  - !Ref AWS::NoValue
        """)
    assert status == 1
    assert "Policy Hidden: dynamodb:DeleteItem on every resource" in out


def test_role_policies_and_not_action_are_checked(tmp_path, capsys):
    status, out = run(tmp_path, capsys, """
        Role:
          Type: AWS::IAM::Role
          Properties:
            AssumeRolePolicyDocument: {}
            Policies:
              - PolicyName: inline
                PolicyDocument:
                  Statement:
                    - Effect: Allow
                      NotAction: iam:*
                      Resource: "*"
        """)
    assert status == 1
    assert "Role/inline statement 0: NotAction iam:*" in out


@pytest.mark.parametrize("action", ["s3:*", "*", "dynamodb:*Item", "sqs:SendMessage"])
def test_wildcards_and_writes_count_as_writes(tmp_path, capsys, action):
    status, _ = run(tmp_path, capsys, f"""
        Policy:
          Type: AWS::IAM::Policy
          Properties:
            PolicyDocument:
              Statement:
                - Effect: Allow
                  Action: "{action}"
                  Resource: "*"
        """)
    assert status == 1


def test_reads_denies_and_allowed_actions_pass_on_every_resource(tmp_path, capsys):
    status, out = run(tmp_path, capsys, """
        Policy:
          Type: AWS::IAM::Policy
          Properties:
            PolicyDocument:
              Statement:
                - Effect: Allow
                  Action: [ec2:DescribeInstances, s3:List*, apigateway:GET, xray:PutTraceSegments]
                  Resource: "*"
                - Effect: Deny
                  Action: "*"
                  Resource: "*"
                - Effect: Allow
                  Action: s3:PutObject
                  Resource: !Sub "arn:${AWS::Partition}:s3:::bucket/*"
        """)
    assert status == 0, out
    assert "3 statements" in out
