"""Issue 15, the output side: every path a scan writes is checked before it reads anything, a
damaged --state or configuration is one line and exit 2, values from logs never break a path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from flowwarden.cli.app import main
from flowwarden.errors import UsageError
from flowwarden.runs.state import STATE_VERSION
from tests.conftest import REPO

EXAMPLES = REPO / "examples" / "data"
INPUTS = sorted(p for p in EXAMPLES.rglob("*.log.gz"))
ADMIN = "AWS.VPC.InboundAdminPort"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_error_line(result: Result) -> str:
    """The one line a usage error prints; fails on a traceback or a crash (exit 1)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@contextmanager
def held_by_another_process(path: Path) -> Iterator[None]:
    """A DuckDB connection to ``path`` in a child process (DuckDB locks the file per process)."""
    code = ("import duckdb, sys\ncon = duckdb.connect(sys.argv[1])\n"
            "con.execute('CREATE TABLE IF NOT EXISTS x (a INT)')\n"
            "print('held', flush=True)\nsys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        yield
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=60)


@pytest.mark.parametrize("option", ["-o", "--stats", "--store", "--state"])
def test_a_file_in_a_missing_directory_is_refused_before_the_scan(tmp_path, option):
    target = tmp_path / "missing" / "file"
    out = tmp_path / "alerts.jsonl"
    args = ["scan", str(EXAMPLES), "-q", option, str(target)]
    if option != "-o":
        args += ["-o", str(out)]
    line = one_error_line(run(*args))
    assert f"{option if option != '-o' else '--output'}: the directory" in line
    assert "does not exist" in line
    assert not out.exists() and not target.parent.exists()  # nothing was scanned or written


def test_an_output_dir_below_a_file_and_an_unwritable_directory_are_refused(tmp_path):
    afile = tmp_path / "plain"
    afile.write_text("x")
    line = one_error_line(run("scan", str(EXAMPLES), "-q", "--output-dir", str(afile / "sub")))
    assert f"--output-dir: {afile} is not a directory" in line
    # /proc takes no new files, for root too (a chmod'ed directory would not stop root).
    line = one_error_line(run("scan", str(EXAMPLES), "-q", "-o", "/proc/alerts.jsonl"))
    assert "--output: cannot create files in /proc" in line


@pytest.mark.parametrize("option", ["--store", "--state"])
def test_a_store_or_state_held_by_another_process_is_refused(tmp_path, option):
    held = tmp_path / "held.duckdb"
    out = tmp_path / "alerts.jsonl"
    with held_by_another_process(held):
        line = one_error_line(run("scan", str(EXAMPLES), "-q", "-o", str(out), option,
                                  str(held)))
    assert "lock" in line and str(held) in line
    assert not out.exists()


@pytest.fixture(scope="module")
def first_state(tmp_path_factory) -> Path:
    """A state after one run over the first example input (open groups of every rule)."""
    root = tmp_path_factory.mktemp("state")
    result = run("scan", str(INPUTS[0]), "-q", "--state", str(root / "state.duckdb"),
                 "-o", str(root / "alerts.jsonl"), "--rule-id", ADMIN)
    assert result.exit_code == 0, result.output
    return root / "state.duckdb"


def _damage(kind: str, first_state: Path, target: Path) -> None:
    if kind == "empty":
        target.write_bytes(b"")
    elif kind == "random bytes":
        target.write_bytes(os.urandom(50_000))
    elif kind == "truncated":
        data = first_state.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif kind == "other tables":
        con = duckdb.connect(str(target))
        con.execute("CREATE TABLE invoices (id INT)")
        con.close()
    else:
        shutil.copy(first_state, target)
        con = duckdb.connect(str(target))
        if kind == "wrong version":
            con.execute("UPDATE meta SET value = '99' WHERE key = 'version'")
        elif kind == "format 1":  # groups as tagged JSON, as flowwarden kept them before
            con.execute("DROP TABLE groups")
            con.execute("CREATE TABLE groups (rule_id VARCHAR, dedup VARCHAR, "
                        "window_start VARCHAR, window_end BIGINT, state VARCHAR)")
            con.execute("UPDATE meta SET value = '1' WHERE key = 'version'")
        elif kind == "groups of another shape":
            con.execute("ALTER TABLE group_events DROP COLUMN sample")
        elif kind == "other meta":
            con.execute("DROP TABLE meta")
            con.execute("CREATE TABLE meta (a INT)")
        con.close()


DAMAGES = {"empty": "not a valid DuckDB", "random bytes": "not a valid DuckDB",
           "truncated": "", "other tables": "not a flowwarden state file",
           "wrong version": f"state format 99, this flowwarden reads {STATE_VERSION}",
           "format 1": f"state format 1, this flowwarden reads {STATE_VERSION}; move it away",
           "groups of another shape": "damaged: table group_events with other columns",
           "other meta": "table meta with other columns"}


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_a_damaged_state_file_is_one_line_and_exit_2(first_state, tmp_path, kind):
    state = tmp_path / "state.duckdb"
    _damage(kind, first_state, state)
    out = tmp_path / "alerts.jsonl"
    # Both inputs: the second is new, so the stored groups are loaded.
    line = one_error_line(run("scan", str(EXAMPLES), "-q", "--state", str(state), "-o", str(out),
                              "--rule-id", ADMIN))
    assert str(state) in line and DAMAGES[kind] in line, line
    assert not out.exists()


def test_configuration_that_is_not_utf8_or_has_a_nested_list_is_one_line(tmp_path):
    config = tmp_path / "flowwarden.yaml"
    config.write_bytes(b"enable: [AWS.VPC.PortScan]\ndisable: [\xff\xfe]\n")
    line = one_error_line(run("scan", str(EXAMPLES), "-q", "--config", str(config)))
    assert f"{config}:2:11: not UTF-8 text: byte 0xff" in line
    config.write_text("rule_constants:\n  AWS.VPC.InboundPortWhitelist:\n"
                      "    APPROVED_PORTS: [[80, 443]]\n")
    for command in ("scan", "check"):
        args = [command, str(EXAMPLES), "-q"] if command == "scan" else [command]
        line = one_error_line(run(*args, "--config", str(config)))
        assert ("rule_constants: AWS.VPC.InboundPortWhitelist.APPROVED_PORTS: expected a list "
                "of integers") in line
        assert "an item that is a list: [80, 443]" in line


def test_a_configuration_value_of_the_wrong_type_is_caught_by_check_and_scan(tmp_path):
    config = tmp_path / "flowwarden.yaml"
    config.write_text('rule_constants:\n  AWS.VPC.InboundPortWhitelist:\n'
                      '    APPROVED_PORTS: "80"\n')
    out = tmp_path / "alerts.jsonl"
    for args in (["check"], ["scan", str(EXAMPLES), "-q", "-o", str(out)]):
        line = one_error_line(run(*args, "--config", str(config)))
        assert line == (f"error: {config}: rule_constants: AWS.VPC.InboundPortWhitelist."
                        "APPROVED_PORTS: expected a list of integers (the rule's default is "
                        "frozenset({80, 443})), got a string: '80'")
    assert not out.exists()
    config.write_text("rule_constants:\n  AWS.VPC.InboundPortWhitelist:\n"
                      "    APPROVED_PORTS: [8080]\n")
    assert run("check", "--config", str(config)).exit_code == 0


def test_account_and_region_values_never_break_the_security_lake_writer(tmp_path):
    long_account = "1" * 300
    header = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
              "bytes start end action log-status region")
    lines = [header,
             f"5 {long_account} eni-1 45.33.32.156 10.0.0.5 40000 22 6 1 40 1418530010 "
             "1418530070 ACCEPT OK us-east-1",
             "5 123456789012 eni-1 45.33.32.157 10.0.0.6 40000 22 6 1 40 1418530010 1418530070 "
             "ACCEPT OK eu\x00west/../1"]
    source = tmp_path / "in" / "flows.log"
    source.parent.mkdir()
    source.write_text("\n".join(lines) + "\n")
    lake, state = tmp_path / "lake", tmp_path / "state.duckdb"
    args = ["scan", str(source.parent), "-q", "--state", str(state), "--rule-id", ADMIN,
            "--output-format", "ocsf-parquet", "--output-dir", str(lake)]
    result = run(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    files = sorted(lake.rglob("*.parquet"))
    parts = [f.relative_to(lake).parts for f in files]
    assert all(len(part) == 6 and len(max(part, key=len)) <= 80 for part in parts), parts
    assert any(part[3].startswith("accountId=" + "1" * 40 + "-") for part in parts), parts
    accounts = {a for f in files
                for a in pq.read_table(f).column("cloud").combine_chunks()
                .field("account").field("uid").to_pylist()}
    assert long_account in accounts  # the findings keep the real values
    source.with_name("more.log").write_text("\n".join([header, lines[1].replace(
        "45.33.32.156", "45.33.32.200")]) + "\n")
    again = run(*args)  # the next run delivers without being wedged
    assert again.exit_code == 0 and len(list(lake.rglob("*.parquet"))) == len(files) + 1


def test_parse_and_report_check_their_output_files_first(tmp_path):
    missing = tmp_path / "missing"
    for args in (["parse", str(INPUTS[0]), "--to", "jsonl", "--out", str(missing / "a.jsonl")],
                 ["parse", str(INPUTS[0]), "--to", "jsonl", "--stats", str(missing / "s.json")],
                 ["report", "--store", str(tmp_path / "s.duckdb"), "--out",
                  str(missing / "r.html")]):
        line = one_error_line(run(*args))
        assert f"the directory {missing} does not exist" in line


def test_the_help_says_that_output_is_appended_to_with_state():
    text = " ".join(run("scan", "--help").output.split())
    assert "With --state each run appends its alerts" in text
    assert "the file exists after every run, empty if no alert was ever written" in text


def test_a_plain_scan_whose_delivery_fails_midway_says_so_in_one_line(tmp_path, monkeypatch):
    import flowwarden.runs.checkpoint as checkpoint

    def failing(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "deliver", failing)
    line = one_error_line(run("scan", str(INPUTS[0]), "-q", "-o", str(tmp_path / "a.jsonl")))
    assert line == "error: cannot deliver the alerts: OSError: [Errno 28] No space left on device"


@pytest.mark.parametrize("command", ["scan", "backtest"])
def test_a_disk_that_fills_during_the_scan_is_one_line_naming_the_temporary_directory(
        tmp_path, monkeypatch, command):
    import tempfile

    import flowwarden.alerts.groupstore as groupstore

    def failing(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(groupstore.RowFile, "flush", failing)
    args = ["-q", "-o", str(tmp_path / "a.jsonl")] if command == "scan" else []
    line = one_error_line(run(command, str(INPUTS[0]), *args))
    assert line.startswith("error: no room left on disk during the scan (OSError: [Errno 28] "
                           "No space left on device)")
    assert f"({tempfile.gettempdir()})" in line and "set TMPDIR" in line
    assert not (tmp_path / "a.jsonl").exists() or not (tmp_path / "a.jsonl").read_text()


def test_other_write_errors_during_the_scan_are_not_called_a_full_disk(monkeypatch):
    import errno

    from flowwarden.runs.diskroom import room_to_scan

    with pytest.raises(PermissionError), room_to_scan():
        raise PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(UsageError, match="no room left on disk"), room_to_scan():
        raise duckdb.IOException('Could not write file "t.tmp": No space left on device')


def test_a_damaged_outbox_entry_is_one_line_not_a_delivery_failure(tmp_path):
    state, out = tmp_path / "state.duckdb", tmp_path / "alerts.jsonl"
    args = ["scan", str(INPUTS[0]), "-q", "--state", str(state), "-o", str(out),
            "--rule-id", ADMIN]
    env = {**os.environ, "FLOWWARDEN_FAILPOINT": "committed"}
    killed = subprocess.run([sys.executable, "-m", "flowwarden.cli", *args], env=env,
                            capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr.decode()
    con = duckdb.connect(str(state))
    assert con.execute("UPDATE run_alerts SET alert = '{garbage'").fetchall()[0][0] > 0
    con.close()
    line = one_error_line(run(*args))
    assert f"{state}: the state file is damaged: " in line


def test_stats_that_cannot_be_written_after_the_scan_are_one_line(tmp_path, monkeypatch):
    import flowwarden.cli.options as options

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(options, "write_atomic", full_disk)
    stats = tmp_path / "stats.json"
    line = one_error_line(run("scan", str(INPUTS[0]), "-q", "-o", str(tmp_path / "a.jsonl"),
                              "--stats", str(stats)))
    assert line == f"error: {stats}: --stats: cannot write: No space left on device"
