"""Every ATT&CK tactic and technique the built-in packs report has its name in alerts, OCSF and
the catalog (``alerts.model``): an id alone reads as a gap."""

from __future__ import annotations

import pytest

from flowwarden.alerts.model import mitre_entries
from flowwarden.rules.loader import load_pack, resolve_pack_paths


@pytest.mark.parametrize("pack", [[], ["tuned"]], ids=["default", "tuned"])
def test_every_reported_id_has_a_name(pack: list[str]) -> None:
    for rule in load_pack(resolve_pack_paths(pack)).rules:
        for entry in mitre_entries(rule.mitre):
            assert entry["tactic"] and entry["technique"], (rule.id, entry)
