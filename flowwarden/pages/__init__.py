"""Pages for people: `explain` output, the static rule catalog and the scan report."""

from __future__ import annotations

from flowwarden.pages.catalog import build_catalog
from flowwarden.pages.render import FORMATS, render_explanation
from flowwarden.pages.report import build_report

__all__ = ["FORMATS", "build_catalog", "build_report", "render_explanation"]
