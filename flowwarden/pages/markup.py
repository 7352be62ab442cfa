"""HTML building blocks shared by the catalog, the report and `explain --format html`.

Every string that reaches a page goes through `esc` (text and attribute values alike) or
`script_json` (data for a `<script>` element): rule titles, alert context values and file names
come from logs and rule files, so none of them is ever trusted as markup.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

# Characters that could end a <script> element, open a comment or break out of a JS string.
_SCRIPT_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    ord("\u2028"): "\\u2028",
    ord("\u2029"): "\\u2029",
}


def esc(value: Any) -> str:
    """The one escaping helper: any value as HTML text, safe in text and quoted attributes.

    >>> esc('<script>"x"</script>')
    '&lt;script&gt;&quot;x&quot;&lt;/script&gt;'
    """
    return html.escape("" if value is None else str(value), quote=True)


def script_json(data: Any) -> str:
    """JSON for a `<script type="application/json">` element: `</script>` can never close it.

    >>> script_json({"t": "</script>"})
    '{"t": "\\\\u003c/script\\\\u003e"}'
    """
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=str).translate(
        _SCRIPT_ESCAPES
    )


def attrs(values: Mapping[str, Any]) -> str:
    """Attributes as ` name="value"`, escaped; None values are left out, True gives a bare name."""
    parts = []
    for name, value in values.items():
        if value is None or value is False:
            continue
        parts.append(f" {name}" if value is True else f' {name}="{esc(value)}"')
    return "".join(parts)


def tag(name: str, body: str = "", **attributes: Any) -> str:
    """`<name attrs>body</name>`; `body` must already be markup (escape text with `esc`).

    A trailing underscore in an attribute name is dropped (`class_` gives `class`) and other
    underscores become dashes (`data_count` gives `data-count`).
    """
    clean = {k.rstrip("_").replace("_", "-"): v for k, v in attributes.items()}
    return f"<{name}{attrs(clean)}>{body}</{name}>"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], **attributes: Any) -> str:
    """A table from header texts (escaped here) and cells that are already markup."""
    head = "".join(tag("th", esc(h), scope="col") for h in headers)
    body = "".join(tag("tr", "".join(tag("td", cell) for cell in row)) for row in rows)
    return tag("table", tag("thead", tag("tr", head)) + tag("tbody", body), **attributes)


def asset(name: str) -> str:
    """The text of one of the package's own CSS/JS files (`flowwarden/pages/assets/`)."""
    return resources.files("flowwarden.pages").joinpath("assets", name).read_text("utf-8")


def page(title: str, body: str, *, head: str = "", css: str | None = None,
         css_href: str | None = None, scripts: Sequence[str] = (),
         script_srcs: Sequence[str] = ()) -> str:
    """A complete HTML5 document; CSS and scripts either inline or as local relative files."""
    styles = tag("style", css) if css is not None else ""
    if css_href:
        styles += f'<link rel="stylesheet"{attrs({"href": css_href})}>'
    inline = "".join(tag("script", code) for code in scripts)
    linked = "".join(tag("script", "", src=src, defer=True) for src in script_srcs)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Nothing on these pages may fetch from the network; this makes it a browser guarantee.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'\">"
        # An empty inline icon: otherwise browsers ask the server for /favicon.ico.
        '<link rel="icon" href="data:,">'
        f"{tag('title', esc(title))}{styles}{head}</head>"
        f"<body>{body}{linked}{inline}</body></html>\n"
    )
