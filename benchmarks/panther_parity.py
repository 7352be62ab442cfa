"""Do flowwarden's alerts equal Panther's on panther-analysis? title, dedup, severity and
alert_context of every matched test, computed by both and compared field by field.

Needs Panther's own test tool (panther-analysis-tool and panther-core) installed in a
**separate** Python environment, given by ``--pat-python PATH`` (default
/tmp/patenv/bin/python), and, for flowwarden, the rule packages panther-analysis imports
(panther-detection-helpers, policyuniverse, pycountry, panther-core) on ``PYTHONPATH``. Neither
belongs in flowwarden's environment.

A *matched test* is a test of a rule or scheduled rule whose ``ExpectedResult`` is true. For
each one:

* flowwarden loads the directory with its loader and runs the rule on the test's event, with
  the test's ``Mocks``, as ``flowwarden test`` does (``flowwarden.rules.testing``);
* a child process under ``--pat-python`` (this script with ``--child-pat``) runs PAT's own
  ``test`` command offline (``test_analysis`` with no backend) and records the
  ``DetectionResult`` panther-core computed for each test case, as JSON lines in a temporary
  file.

Compared after normalising: ``alert_context`` as ``json.dumps(sort_keys=True, default=str)``
of the mapping (PAT's serialized text parsed back first); ``severity`` in upper case (Panther's
spelling of a level; flowwarden keeps the YAML's); an error in a function as ``error:
<Type>: <message>`` on both sides. Two deliberate departures from PAT's test command, both
what Panther does when it runs a detection for real: the child passes each detection's YAML
``Severity`` to panther-core (PAT's test command passes none, so there ``severity()`` returning
DEFAULT gives None), and a detection without ``severity()`` has its YAML ``Severity``. Both
processes run with the same ``PYTHONHASHSEED`` (``--hash-seed``), since a few rules format a
set of strings, whose order depends on it.

Offline, PAT skips YAML simple detections (they need the backend to transpile) and ignores
``InlineFilters``: those tests are counted as "flowwarden only" and not compared. A test that
only one side matched is a parity failure, as is one PAT ran and flowwarden did not.

Exit status: 0 when every compared field is equal, no matched test was matched by one tool
only, and flowwarden ran every matched test PAT ran; else 1 (2 when it could not run).

    PYTHONPATH=/tmp/fw_pinned python benchmarks/panther_parity.py /tmp/pa
    PYTHONPATH=/tmp/fw_pinned python benchmarks/panther_parity.py /tmp/pa --show 100
"""

from __future__ import annotations

# Only the standard library at module level: the --child-pat mode runs in PAT's environment,
# where flowwarden is not installed.
import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIELDS = ("title", "dedup", "severity", "alert_context")
DETECTION_KINDS = ("rule", "scheduled_rule")
DEFAULT_PAT_PYTHON = "/tmp/patenv/bin/python"
DEFAULT_PATH = "/tmp/pa"
SHOWN_CHARS = 160  # of a value in the list of differences

# (detection id, test name, how many earlier tests of that detection have the same name):
# test names are not unique within a detection, but both tools run a detection's tests in
# the order of its YAML.
Key = tuple[str, str, int]
# A field as computed: {"ok": value} or {"err": "<Type>: <message>"}. A wrapper rather than a
# sentinel string, since any string or mapping is a legitimate value.
Outcome = dict[str, Any]


def ok(value: Any) -> Outcome:
    return {"ok": value}


def err(exc: BaseException | str) -> Outcome:
    return {"err": exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"}


# --- PAT's side: runs under --pat-python ------------------------------------------------------


def run_pat_child(path: str, out: str) -> None:
    """Run PAT's ``test`` command on ``path`` offline and write one JSON line per test case of
    a rule or scheduled rule: what panther-core computed.

    The results are taken where PAT's test loop hands them to ``TestCaseEvaluator``, so the
    events, mocks, data models and helpers are the ones PAT itself set up."""
    import panther_analysis_tool.main as pat_main  # PAT's environment only
    from panther_core.rule import Rule as PatRule

    severities: dict[str, str] = {}
    seen: Counter[tuple[str, str]] = Counter()
    sink = open(out, "w", encoding="utf-8")  # noqa: SIM115 - closed after the run below

    real_load = pat_main.load_analysis
    real_evaluator = pat_main.TestCaseEvaluator

    def load_analysis(*args: Any, **kwargs: Any) -> Any:
        specs, invalid = real_load(*args, **kwargs)
        for item in specs.detections + specs.simple_detections:
            spec = item.analysis_spec
            detection_id = spec.get("RuleID") or spec.get("PolicyID")
            if detection_id and isinstance(spec.get("Severity"), str):
                severities[detection_id] = spec["Severity"].upper()
        return specs, invalid

    def rule_with_severity(config: Mapping[str, Any]) -> Any:
        # PAT's test command leaves a detection's severity unset (panther-core's own TODO);
        # Panther's backend sets it, and DEFAULT and a missing severity() fall back to it.
        return PatRule({**config, "severity": severities.get(config.get("id", ""))})

    def evaluator(spec: Any, result: Any) -> Any:
        kind = str(result.detection_type or "").lower()
        if kind in DETECTION_KINDS:
            name = str(spec.name)
            n = seen[(result.detection_id, name)]
            seen[(result.detection_id, name)] += 1
            record = {"id": result.detection_id, "test": name, "n": n, "kind": kind,
                      "expected": bool(spec.expectations.detection),
                      **pat_fields(result)}
            sink.write(json.dumps(record, default=str) + "\n")
        return real_evaluator(spec, result)

    pat_main.load_analysis = load_analysis
    pat_main.Rule = rule_with_severity
    pat_main.TestCaseEvaluator = evaluator
    args = pat_main.TestAnalysisArgs(
        path=".", ignore_files=[], filters=[], filters_inverted=[], ignore_extra_keys=False,
        ignore_table_names=False, valid_table_names=[], available_destination=[],
        sort_test_results=False, show_failures_only=False, minimum_tests=0,
        skip_disabled_tests=False, test_names=[],
    )
    # PAT finds global_helpers/ and data_models/ relative to the working directory too, as
    # when it is run at a repository's root.
    os.chdir(path)
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            pat_main.test_analysis(None, args)
    finally:
        sink.close()


def pat_fields(result: Any) -> dict[str, Any]:
    """A panther-core ``DetectionResult`` (of a test, so errors are raised, not defaulted) as
    the fields compared."""
    matched: Outcome = (err(result.detection_exception) if result.detection_exception
                        else ok(result.detection_output))
    fields: dict[str, Outcome] = {}
    fields["title"] = (err(result.title_exception) if result.title_exception
                       else ok(result.title_output))
    fields["dedup"] = (err(result.dedup_exception) if result.dedup_exception
                       else ok(result.dedup_output))
    if result.severity_exception:
        fields["severity"] = err(result.severity_exception)
    else:
        fields["severity"] = ok(result.severity_output or result.detection_severity)
    if result.alert_context_exception:
        fields["alert_context"] = err(result.alert_context_exception)
    elif result.alert_context_output is None:
        fields["alert_context"] = ok(None)
    else:
        fields["alert_context"] = ok(json.loads(result.alert_context_output))
    return {"matched": matched, "fields": fields}


# --- flowwarden's side ------------------------------------------------------------------------


def flowwarden_records(path: str) -> tuple[list[dict[str, Any]], int]:
    """One record per test of a rule or scheduled rule, as ``flowwarden test`` runs it; and how
    many files failed to load."""
    from flowwarden.rules.kinds import kind
    from flowwarden.rules.loader import load_pack
    from flowwarden.rules.simple import SimpleRule
    from flowwarden.rules.testing import _mocked, event_for

    pack = load_pack([path])
    records = []
    for rule in pack.rules:
        if kind(rule) not in DETECTION_KINDS:
            continue
        seen: Counter[str] = Counter()
        for test in rule.tests:
            n = seen[test.name]
            seen[test.name] += 1
            # What a rule prints is the test's, as in the test runner, not this report's.
            printed = io.StringIO()
            with (_mocked(rule, test.mocks), contextlib.redirect_stdout(printed),
                  contextlib.redirect_stderr(printed)):
                result = rule.evaluate(event_for(pack, rule, test.log))
            matched = (err(result.rule_error) if result.rule_error
                       else ok(bool(result.matched)))
            fields = {name: (err(result.errors[name]) if name in result.errors
                             else ok(getattr(result, name))) for name in FIELDS}
            records.append({"id": rule.id, "test": test.name, "n": n, "kind": kind(rule),
                            "expected": test.expected, "matched": matched, "fields": fields,
                            "simple": isinstance(rule, SimpleRule)})
    return records, len(pack.problems)


# --- comparison -------------------------------------------------------------------------------


def normalised(name: str, outcome: Outcome) -> str | None:
    """The text two outcomes are compared by."""
    if "err" in outcome:
        return f"error: {outcome['err']}"
    value = outcome["ok"]
    if value is None:
        return None
    if name == "alert_context":
        return json.dumps(value, sort_keys=True, default=str)
    if name == "severity":
        return str(value).upper()
    return str(value)


def context_detail(pat: Outcome, fw: Outcome) -> tuple[str, str] | None:
    """For two alert contexts that are both mappings, only the keys whose values differ: a
    context is often long and differs in one key."""
    a, b = pat.get("ok"), fw.get("ok")
    if not isinstance(a, dict) or not isinstance(b, dict):
        return None
    keys = sorted(k for k in a.keys() | b.keys()
                  if json.dumps(a.get(k, "<absent>"), sort_keys=True, default=str)
                  != json.dumps(b.get(k, "<absent>"), sort_keys=True, default=str))
    def pick(d: dict[str, Any]) -> str:
        return json.dumps({k: d.get(k, "<absent>") for k in keys}, sort_keys=True, default=str)
    return pick(a), pick(b)


@dataclass
class Difference:
    rule_id: str
    test: str
    field: str
    pat: str | None
    flowwarden: str | None


@dataclass
class Comparison:
    compared: int = 0
    equal: Counter[str] = field(default_factory=Counter)
    different: Counter[str] = field(default_factory=Counter)
    all_equal: int = 0
    unmatched_pat: list[Key] = field(default_factory=list)  # flowwarden matched, PAT did not
    unmatched_fw: list[Key] = field(default_factory=list)  # PAT matched, flowwarden did not
    pat_only: list[Key] = field(default_factory=list)
    fw_only: list[Key] = field(default_factory=list)
    fw_only_simple: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def parity(self) -> bool:
        return not (self.differences or self.unmatched_fw or self.unmatched_pat
                    or self.pat_only)


def matched(record: Mapping[str, Any]) -> bool:
    return record["matched"].get("ok") is True


def compare(pat: Sequence[dict[str, Any]], fw: Sequence[dict[str, Any]]) -> Comparison:
    def index(records: Sequence[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
        return {(r["id"], r["test"], r["n"]): r for r in records if r["expected"]}

    pat_by, fw_by = index(pat), index(fw)
    result = Comparison()
    for key in sorted(pat_by.keys() | fw_by.keys()):
        p, f = pat_by.get(key), fw_by.get(key)
        if f is None:
            result.pat_only.append(key)
            continue
        if p is None:
            result.fw_only.append(key)
            result.fw_only_simple += bool(f.get("simple"))
            continue
        if not matched(p) or not matched(f):
            if matched(f):
                result.unmatched_pat.append(key)
            elif matched(p):
                result.unmatched_fw.append(key)
            else:  # neither: a failing test on both sides, not a parity question
                result.unmatched_pat.append(key)
                result.unmatched_fw.append(key)
            continue
        result.compared += 1
        same = True
        for name in FIELDS:
            a, b = normalised(name, p["fields"][name]), normalised(name, f["fields"][name])
            if a == b:
                result.equal[name] += 1
                continue
            same = False
            result.different[name] += 1
            detail = (context_detail(p["fields"][name], f["fields"][name])
                      if name == "alert_context" else None)
            shown = detail or (a, b)
            result.differences.append(Difference(key[0], key[1], name, *shown))
        result.all_equal += same
    return result


def clip(text: str | None) -> str:
    if text is None:
        return "(none)"
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text)} chars)"


def report(result: Comparison, show: int) -> Iterator[str]:
    yield f"{'matched tests (ExpectedResult: true)':<46}{'tests':>8}"
    rows = (
        ("compared (both tools matched)", result.compared),
        ("matched by flowwarden only", len(set(result.unmatched_pat) - set(result.unmatched_fw))),
        ("matched by PAT only", len(set(result.unmatched_fw) - set(result.unmatched_pat))),
        ("matched by neither", len(set(result.unmatched_fw) & set(result.unmatched_pat))),
        ("run by PAT only (flowwarden did not load)", len(result.pat_only)),
        ("run by flowwarden only (PAT skipped)", len(result.fw_only)),
        ("  of which YAML simple detections", result.fw_only_simple),
    )
    for label, count in rows:
        yield f"  {label:<44}{count:>8}"
    yield ""
    yield f"{'field':<16}{'equal':>8}{'different':>11}"
    for name in FIELDS:
        yield f"{name:<16}{result.equal[name]:>8}{result.different[name]:>11}"
    yield f"{'all four':<16}{result.all_equal:>8}{result.compared - result.all_equal:>11}"
    by_rule = Counter((d.field, d.rule_id) for d in result.differences)
    if result.differences:
        yield ""
        yield f"rules with a difference: {len({d.rule_id for d in result.differences})}"
        yield f"first {min(show, len(result.differences))} of {len(result.differences)} differences"
        for diff in result.differences[:show]:
            yield f"- {diff.rule_id} / {diff.test} / {diff.field}"
            yield f"    PAT:        {clip(diff.pat)}"
            yield f"    flowwarden: {clip(diff.flowwarden)}"
        yield ""
        yield "differences per field and rule"
        for (name, rule_id), count in sorted(by_rule.items()):
            yield f"  {name:<14} {rule_id}: {count}"
    for label, keys in (("matched by PAT, not by flowwarden", result.unmatched_fw),
                        ("matched by flowwarden, not by PAT", result.unmatched_pat),
                        ("run by PAT, not by flowwarden", result.pat_only)):
        if keys:
            yield ""
            yield f"{label}: {len(keys)}"
            for rule_id, test, _ in keys[:show]:
                yield f"  {rule_id} / {test}"


def read_lines(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def start_pat(pat_python: str, path: str, out: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    # The PYTHONPATH that gives flowwarden the rule packages would shadow PAT's own copies
    # of them (panther-core among them) in the child.
    env.pop("PYTHONPATH", None)
    command = [pat_python, str(Path(__file__).resolve()), "--child-pat", "--out", out,
               str(Path(path).resolve())]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog=doc.split("\n\n", 1)[1] if "\n\n" in doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH,
                        help=f"a panther-analysis checkout (default: {DEFAULT_PATH})")
    parser.add_argument("--pat-python", default=DEFAULT_PAT_PYTHON, metavar="PATH",
                        help="the Python of the environment with panther-analysis-tool "
                             f"(default: {DEFAULT_PAT_PYTHON})")
    parser.add_argument("--hash-seed", type=int, default=0, metavar="N",
                        help="PYTHONHASHSEED of both processes, so that rules iterating over "
                             "a set of strings see the same order in both (default: 0)")
    parser.add_argument("--show", type=int, default=20, metavar="N",
                        help="list the first N differences (default: 20)")
    parser.add_argument("--child-pat", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_pat:
        run_pat_child(args.path, args.out)
        return 0
    if os.environ.get("PYTHONHASHSEED") != str(args.hash_seed):
        # A set of strings iterates in an order that depends on the process's hash seed, and
        # some rules put one in a title or context; only the interpreter's start can fix it.
        env = {**os.environ, "PYTHONHASHSEED": str(args.hash_seed)}
        again = list(sys.argv[1:] if argv is None else argv)
        os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()), *again], env)
    if not Path(args.path).is_dir():
        print(f"error: {args.path} is not a directory", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="panther_parity_") as tmp:
        out = str(Path(tmp) / "pat.jsonl")
        started = time.perf_counter()
        # PAT runs while flowwarden does: the two are independent.
        child = start_pat(args.pat_python, args.path, out)
        fw, invalid = flowwarden_records(args.path)
        fw_seconds = time.perf_counter() - started
        if child.wait() != 0:
            print(f"error: the PAT child process failed (exit {child.returncode})",
                  file=sys.stderr)
            return 2
        pat_seconds = time.perf_counter() - started
        pat = read_lines(out)
    result = compare(pat, fw)
    print(f"panther-analysis at {args.path}: {len(pat)} rule tests run by PAT "
          f"({pat_seconds:.0f} s), {len(fw)} by flowwarden ({fw_seconds:.0f} s, "
          f"{invalid} files failed to load)")
    print()
    for line in report(result, args.show):
        print(line)
    return 0 if result.parity else 1


if __name__ == "__main__":
    sys.exit(main())
