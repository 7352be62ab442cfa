"""Write the part of a compiled OCSF schema that the OCSF tests need, as a smaller JSON file.

The tests validate Detection Findings (class 2004, what flowwarden writes) and Network Activity
events (class 4001, the OCSF sample flow logs). The extract holds those two classes, every object
their attributes reach (recursively), every type, and the schema's version, each entry copied
unchanged from the compiled file (``python -m ocsf.compile`` of ``ocsf/ocsf-schema`` at tag
v1.1.0, ``ocsf-lib`` 0.10.4). Remake it with::

    python -m tests.alerts.ocsf_extract path/to/ocsf-1.1.0.json

``tests/fixtures/ocsf/SOURCES.md`` says where the compiled file came from.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parents[1] / "fixtures" / "ocsf" / "ocsf-1.1.0-extract.json"
CLASSES = ("detection_finding", "network_activity")


def reachable_objects(compiled: Mapping[str, Any], classes: Iterable[str]) -> list[str]:
    """The names of the objects the classes' attributes reach, directly or through objects."""
    objects = compiled["objects"]
    seen: set[str] = set()
    pending = [compiled["classes"][name]["attributes"] for name in classes]
    while pending:
        for attribute in pending.pop().values():
            name = attribute["type"]
            if name in objects and name not in seen:
                seen.add(name)
                pending.append(objects[name]["attributes"])
    return sorted(seen)


def extract(compiled: Mapping[str, Any], classes: Iterable[str] = CLASSES) -> dict[str, Any]:
    classes = list(classes)
    return {
        "version": compiled["version"],
        "classes": {name: compiled["classes"][name] for name in classes},
        "objects": {name: compiled["objects"][name]
                    for name in reachable_objects(compiled, classes)},
        "types": compiled["types"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("compiled", type=Path, help="the compiled OCSF 1.1.0 schema (JSON)")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT}")
    args = parser.parse_args(argv)
    data = extract(json.loads(args.compiled.read_text(encoding="utf-8")))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n",
                           encoding="utf-8")
    print(f"{args.output}: {len(data['classes'])} classes, {len(data['objects'])} objects, "
          f"{len(data['types'])} types")


if __name__ == "__main__":
    main()
