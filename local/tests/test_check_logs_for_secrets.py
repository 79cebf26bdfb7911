"""local/check-logs-for-secrets.py must find a secret of the env file in any log, by file and
line and without printing it, and pass logs without one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

LOCAL_DIR = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("check_logs", LOCAL_DIR / "check-logs-for-secrets.py")
check_logs = importlib.util.module_from_spec(SPEC)
sys.modules["check_logs"] = check_logs
SPEC.loader.exec_module(check_logs)

ENV = (
    "AWS_SECRET_ACCESS_KEY=local\n"
    "STRIPE_SECRET_KEY=sk_test_abc123\n"
    "STRIPE_WEBHOOK_SECRETS=\"whsec_new,whsec_old\"\n"
    "TABLE_NAME=billing\n"
)


def run(tmp_path: Path, logs: dict, capsys, monkeypatch) -> tuple[int, str]:
    env = tmp_path / "env"
    env.write_text(ENV)
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    for name, text in logs.items():
        (log_dir / name).write_text(text)
    monkeypatch.setattr(sys, "argv", ["check", "--env", str(env), "--logs", str(log_dir)])
    status = check_logs.main()
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_clean_logs_pass(tmp_path, capsys, monkeypatch):
    status, out = run(tmp_path, {"lambda.log": "INFO spawning AWS_SECRET_ACCESS_KEY=\"local\"\n"},
                      capsys, monkeypatch)
    assert status == 0, out
    assert "3 secrets" in out


def test_each_secret_is_found_by_file_and_line_and_not_printed(tmp_path, capsys, monkeypatch):
    status, out = run(tmp_path, {
        "lambda.log": "fine\nSTRIPE_SECRET_KEY=\"sk_test_abc123\"\n",
        "front.log": "signed with whsec_old\n",
    }, capsys, monkeypatch)
    assert status == 1
    assert "lambda.log:2: the value of STRIPE_SECRET_KEY" in out
    assert "front.log:1: the value of STRIPE_WEBHOOK_SECRETS" in out
    assert "sk_test_abc123" not in out and "whsec_old" not in out
