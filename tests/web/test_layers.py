"""Issue 18: the web reads the hall through the contract, the catalog and the layout only; it
imports nothing of the coordinator's internals (its labels, tables and calendar included)."""

from __future__ import annotations

import ast
from pathlib import Path

import hall_devices


def test_the_web_imports_no_coordinator_module() -> None:
    found = []
    for path in sorted((Path(hall_devices.__file__).parent / "web").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            found += [f"{path.name}: {n}" for n in names if n.startswith("hall_devices.coordinator")]
    assert found == []
