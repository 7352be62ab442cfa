"""Issue 15, silent zero: a scan that cannot have done what the user meant says so on stderr,
with -q too, and --strict makes that exit 2."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from flowwarden.cli.app import main
from flowwarden.cli.doubts import format_doubts
from tests.conftest import FIXTURES, REPO, SAMPLES

EXAMPLES = REPO / "examples" / "data"
V2 = SAMPLES / "s3-text" / "awsdocs_default_v2_examples.log"
TYPO = ("${version} ${account-id} ${interface-id} ${srcadr} ${dstaddr} ${srcport} ${dstport} "
        "${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def warnings_of(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def scan_both_ways(*args: str) -> tuple[Result, Result]:
    """The scan quiet, then quiet and strict: the first exits 0, the second 2."""
    quiet = run("scan", *args, "-q")
    assert quiet.exit_code == 0, (quiet.output, quiet.exception)
    strict = run("scan", *args, "-q", "--strict")
    assert strict.exit_code == 2, (strict.output, strict.exception)
    assert strict.stderr.strip().splitlines()[-1].startswith("error: --strict: ")
    assert warnings_of(strict) == warnings_of(quiet)
    return quiet, strict


@pytest.fixture
def headerless(tmp_path):
    path = tmp_path / "headerless.log"
    path.write_text("".join(V2.read_text().splitlines(keepends=True)[1:]))
    return path


def test_an_unknown_format_field_is_named_with_the_closest_known_one(headerless, tmp_path):
    out = tmp_path / "alerts.jsonl"
    quiet, strict = scan_both_ways(str(headerless), "--format", TYPO, "-o", str(out))
    assert warnings_of(quiet) == [
        "warning: --format: unknown field 'srcadr' (did you mean 'srcaddr'?): its values go to "
        "a column no rule reads"]
    assert "before scanning" in strict.stderr  # --strict stops before reading anything


def test_a_correct_format_gives_no_warning(headerless):
    result = run("scan", str(headerless), "-q", "--strict", "--format",
                 TYPO.replace("srcadr", "srcaddr"))
    assert result.exit_code == 0 and warnings_of(result) == []


def test_format_fields_named_twice_or_unlike_any_known_field():
    assert format_doubts("${version} ${zzzz} ${version}") == [
        "--format: unknown field 'zzzz' (no known field is like it): its values go to a column "
        "no rule reads",
        "--format: field 'version' is named 2 times: only the last position is read"]
    assert format_doubts(None) == []


def test_no_inputs_an_empty_file_and_an_empty_directory_are_reported(tmp_path):
    empty_dir, empty_file = tmp_path / "none", tmp_path / "empty.log"
    empty_dir.mkdir()
    empty_file.write_text("")
    quiet, _ = scan_both_ways(str(empty_dir))
    assert warnings_of(quiet) == [f"warning: no inputs found in {empty_dir}"]
    quiet, _ = scan_both_ways(str(empty_file))
    assert warnings_of(quiet) == [
        f"warning: no records read: the 1 input(s) are empty ({empty_file})"]


def test_inputs_in_no_recognised_format_are_reported(tmp_path):
    (tmp_path / "a.txt").write_text("hello world\n")
    (tmp_path / "b.txt").write_text("foo bar\n")
    quiet, _ = scan_both_ways(str(tmp_path))
    (line,) = warnings_of(quiet)
    assert line.startswith("warning: none of the 2 input(s) is in a recognised log format: ")
    assert str(tmp_path / "a.txt") in line and 'first line "hello world"' in line
    mixed = run("scan", str(tmp_path), str(V2), "-q")
    assert warnings_of(mixed)[0].startswith(
        "warning: 2 of the 3 inputs are in no recognised log format")


def test_rules_that_failed_to_load_are_reported_and_strict_scans_nothing(tmp_path):
    out = tmp_path / "alerts.jsonl"
    quiet, strict = scan_both_ways(str(EXAMPLES), "--pack", str(FIXTURES / "broken_rules"),
                                   "-o", str(out))
    assert warnings_of(quiet) == ["warning: 2 problem(s) loading the rules (the invalid: lines): "
                                  "the rules concerned do not run"]
    assert "broken_syntax.py:1:16: syntax error" in quiet.stderr
    out.unlink()
    assert strict.exit_code == 2 and "before scanning" in strict.stderr
    assert not out.exists()


@pytest.mark.parametrize("engine", ["duckdb", "python"])
def test_a_rule_raising_on_most_events_is_reported(engine):
    quiet, _ = scan_both_ways(str(EXAMPLES), "--engine", engine,
                              "--pack", str(FIXTURES / "raising_rules"))
    assert warnings_of(quiet) == [
        "warning: rule Fixture.Raising.MissingField raised on 10,000 of 10,000 events, so it "
        "cannot alert on them (first: KeyError: 'userName')"]


def test_strict_with_quiet_names_the_rejected_records(tmp_path):
    bad = tmp_path / "bad.log"
    bad.write_text(V2.read_text().splitlines()[0] + "\n"
                   "2 123456789010 eni-1 45.33.32.156 10.0.0.5 40000 abc 6 1 40 1418530010 "
                   "1418530070 REJECT OK\n")
    result = run("scan", str(bad), "-q", "--strict")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(
        f"error: --strict: 1 record(s) rejected (first: {bad}:2: ")


def test_a_good_scan_says_nothing_with_quiet_and_passes_strict(tmp_path):
    result = run("scan", str(EXAMPLES), "-q", "--strict", "-o", str(tmp_path / "a.jsonl"))
    assert result.exit_code == 0 and result.stderr == ""


def test_nothing_new_with_state_is_not_a_warning(tmp_path):
    args = ["scan", str(EXAMPLES), "-q", "--strict", "--state", str(tmp_path / "s.duckdb"),
            "-o", str(tmp_path / "a.jsonl")]
    assert run(*args).exit_code == 0
    again = run(*args)
    assert again.exit_code == 0 and again.stderr == ""


def test_rules_reading_tables_nobody_defined_are_a_note_not_a_warning(tmp_path):
    # the default pack's ThreatIntelMatch and TorTraffic read tables the user gives, or not
    result = run("scan", str(EXAMPLES), "--strict", "-o", str(tmp_path / "a.jsonl"))
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert [n.split(" is not defined")[0] for n in notes] == [
        "note: lookup table threat_intel", "note: lookup table tor_exit_nodes"]
    assert "AWS.VPC.ThreatIntelMatch cannot match through it" in notes[0]
    assert "warning:" not in result.stderr
