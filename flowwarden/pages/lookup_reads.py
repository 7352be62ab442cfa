"""Which lookup tables a rule reads, found in its Python and the global helpers it imports.

A rule reads a table by name in three ways Panther's content uses: ``p_enrichment`` followed by
the table's name among a call's string arguments (``deep_get(event, "p_enrichment", "tor")``,
``event.deep_get(ENRICHMENT_KEY, "tor")`` with ``ENRICHMENT_KEY = "p_enrichment"``) or
subscripts (``event["p_enrichment"]["tor"]``); ``event.lookup("tor", key)``; and
``LookupTableMatches._register(event, "tor")`` in panther-analysis's helpers. Helpers that find
their table by a name suffix (GreyNoise's ``*_noise``, OTX's ``*_otx``) read a pattern, shown as
such with the loaded tables it matches. Names built at run time are not seen.

Only the source is read (``ast``), never run; the helpers are the modules the rule imports that
the pack made importable (its ``HelperFinder``), followed through their own imports.
"""

from __future__ import annotations

import ast
import fnmatch
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from flowwarden.rules.modules import HelperFinder

ENRICHMENT = "p_enrichment"
RULE = "rule"  # the `via` of a table read in the rule's own code
MAX_HELPERS = 50  # helpers followed per rule: imports of imports stay few
Text = Callable[[ast.AST], "str | None"]  # a node's string value, constants resolved


@dataclass(frozen=True)
class TableRead:
    """A table (or a ``*suffix`` pattern) a rule reads, where it is read, and the loaded
    tables it names."""

    table: str
    via: str  # RULE, or the helper module's name
    loaded: tuple[str, ...] = ()

    @property
    def is_pattern(self) -> bool:
        return "*" in self.table


def tables_read(source: str, loaded: Sequence[str] = ()) -> tuple[TableRead, ...]:
    """The tables the rule ``source`` reads, its own first, then its helpers'.

    >>> [t.table for t in tables_read('def rule(e): return e.deep_get("p_enrichment", "tor")')]
    ['tor']
    >>> tables_read('def rule(e): return e.lookup("owners", e.get("ip"))', ["owners"])
    (TableRead(table='owners', via='rule', loaded=('owners',)),)
    """
    found: dict[tuple[str, str], None] = {}
    for via, tree in _sources(source):
        for table in _names_in(tree):
            found.setdefault((table, via), None)
    return tuple(TableRead(table, via, _loaded(table, loaded)) for table, via in found)


def with_condition_reads(found: Sequence[TableRead], fields: Iterable[str],
                         loaded: Sequence[str] = ()) -> tuple[TableRead, ...]:
    """``found`` and the tables the rule's extracted condition reads (its dotted ``fields``),
    which name tables its source may only compute (``for table in setting(...)``).

    >>> [t.table for t in with_condition_reads([], ["p_enrichment.iocs.srcAddr.p_match", "a"])]
    ['iocs']
    """
    known = {t.table for t in found if t.via == RULE}
    more = dict.fromkeys(parts[1] for parts in (f.split(".") for f in fields)
                         if len(parts) > 1 and parts[0] == ENRICHMENT and parts[1] not in known)
    return (*found, *(TableRead(table, RULE, _loaded(table, loaded)) for table in more))


def _loaded(table: str, loaded: Sequence[str]) -> tuple[str, ...]:
    return tuple(name for name in loaded if fnmatch.fnmatchcase(name, table))


def _sources(source: str) -> Iterator[tuple[str, ast.Module]]:
    """The rule's tree, then each imported helper's (of the pack loaded last), each once."""
    tree = _parse(source)
    if tree is None:
        return
    yield RULE, tree
    helpers = _helper_paths()
    queue, seen = list(_imports(tree)), set[str]()
    while queue and len(seen) < MAX_HELPERS:
        name = queue.pop(0)
        if name in seen or name not in helpers:  # the standard library is no helper
            continue
        seen.add(name)
        helper = _parse(_read(helpers[name]))
        if helper is not None:
            yield name, helper
            queue.extend(_imports(helper))


def _helper_paths() -> dict[str, Path]:
    """The global helpers the active pack made importable, by module name."""
    found: dict[str, Path] = {}
    for finder in sys.meta_path:
        if isinstance(finder, HelperFinder):
            found.update(finder.helpers)
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _imports(tree: ast.Module) -> Iterator[str]:
    """Top-level module names a module imports (a helper is a top-level module)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module.split(".")[0]
        elif isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)


def _names_in(tree: ast.Module) -> Iterator[str]:
    constants = _string_constants(tree)

    def text(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    # a module-level NAME = "p_enrichment" is a constant of the tree too
    mentions_enrichment = any(isinstance(n, ast.Constant) and n.value == ENRICHMENT
                              for n in ast.walk(tree))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield from _call_names(node, text)
            if mentions_enrichment:
                yield from _suffix_pattern(node, text)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Subscript) \
                and text(node.value.slice) == ENRICHMENT:
            name = text(node.slice)
            if name:
                yield name


def _call_names(call: ast.Call, text: Text) -> Iterator[str]:
    args = [text(a) for a in call.args]
    method = call.func.attr if isinstance(call.func, ast.Attribute) else \
        call.func.id if isinstance(call.func, ast.Name) else ""
    if method == "lookup" and args and args[0]:
        yield args[0]
    elif method == "_register" and len(args) >= 2 and args[1]:
        yield args[1]
    for before, name in zip(args, args[1:], strict=False):
        if before == ENRICHMENT and name:
            yield name


def _suffix_pattern(call: ast.Call, text: Text) -> Iterator[str]:
    """``name.endswith("_noise")`` in a module that reads ``p_enrichment``: the helper picks
    its table by that suffix."""
    if isinstance(call.func, ast.Attribute) and call.func.attr == "endswith" and call.args:
        suffix = text(call.args[0])
        if suffix and suffix.startswith("_"):
            yield f"*{suffix}"


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments."""
    found = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant) \
                and isinstance(stmt.value.value, str):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = stmt.value.value
    return found


def loaded_tables(spec_names: Iterable[str], configured: Iterable[str]) -> list[str]:
    """The table names a pack knows: its lookup_table YAMLs' and its configuration's."""
    return list(dict.fromkeys([*spec_names, *configured]))
