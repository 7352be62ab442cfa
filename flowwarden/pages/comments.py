"""Why a rule tests what it tests: the comments its author wrote above each statement.

The tuned pack explains each extra condition in a comment; `explain` shows it beside the
condition that statement produced.
"""

from __future__ import annotations

import ast
import io
import tokenize


def statement_comments(source: str) -> dict[int, str]:
    """For every line of every statement, the comment that explains that statement.

    The comment is the block of `#` lines directly above the statement, else a comment at the
    end of its first line. A block's comment covers its body (an unrolled `for` produces its
    conditions from the body) until a nested statement has a comment of its own.

    >>> src = "def rule(e):\\n    # why\\n    # and why\\n    if e:\\n        return False\\n"
    >>> statement_comments(src)[4]
    'why\\nand why'
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    lines = source.splitlines()
    trailing = _trailing_comments(source)
    found: dict[int, str] = {}
    for stmt in sorted((n for n in ast.walk(tree) if isinstance(n, ast.stmt)),
                       key=lambda n: (n.lineno, -(n.end_lineno or n.lineno))):
        comment = _comment_above(lines, stmt.lineno) or trailing.get(stmt.lineno)
        if comment is None:
            continue
        end = stmt.end_lineno or stmt.lineno
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            end = stmt.lineno  # a comment on a function is not the reason for each statement
        for line in range(stmt.lineno, end + 1):
            found[line] = comment
    return found


def _comment_above(lines: list[str], lineno: int) -> str | None:
    block: list[str] = []
    index = lineno - 2
    while index >= 0 and lines[index].strip().startswith("#"):
        block.append(lines[index].strip().lstrip("#").strip())
        index -= 1
    return "\n".join(reversed(block)) or None


def _trailing_comments(source: str) -> dict[int, str]:
    """Comments that follow code on their line, by line number."""
    found: dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and not token.line.strip().startswith("#"):
                found[token.start[0]] = token.string.lstrip("#").strip()
    except (tokenize.TokenError, SyntaxError):
        return found
    return found
