"""The docs must not fall behind the code (after datasette): each test names what is missing."""

from __future__ import annotations

import re
from pathlib import Path

from lensgraph import schema
from lensgraph.cli import main

ROOT = Path(__file__).parent.parent


def test_schema_doc_covers_every_table_and_column() -> None:
    doc = (ROOT / "docs" / "SCHEMA.md").read_text()
    assert f"version {schema.SCHEMA_VERSION}" in doc.splitlines()[0]
    missing = [t for t in [*schema.NODE_TABLES, *schema.REL_TABLES] if t not in doc]
    for table, columns in schema.NODE_TABLES.items():
        missing += [f"{table}.{c}" for c in columns if f"`{c}`" not in doc]
    for table, rel in schema.REL_TABLES.items():
        missing += [f"{table}.{c}" for c in rel.columns if c not in doc]
    missing += [f"kind {k}" for k in (*schema.LAYER_KINDS, schema.FINAL_KIND, *schema.NEURON_KINDS)
                if f"`{k}`" not in doc]
    assert not missing, f"docs/SCHEMA.md lacks: {missing}"


def test_readme_covers_every_command_and_the_quick_start() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in main.commands if f"lensgraph {name}" not in readme]
    assert not missing, f"README.md lacks commands: {missing}"
    quick = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^\s*(make \w+)", quick, re.M)
    assert commands == ["make demo", "make test"], commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_readme_names_every_environment_variable() -> None:
    code = "".join(f.read_text() for d in ("lensgraph", "ingest", "queries", "export")
                   for f in (ROOT / d).rglob("*.py"))
    names = set(re.findall(r"\bLENSGRAPH_[A-Z_]+\b", code))
    readme = (ROOT / "README.md").read_text()
    assert names, "no LENSGRAPH_ variable found: the pattern is out of date"
    missing = sorted(n for n in names if f"`{n}`" not in readme)
    assert not missing, f"README.md lacks environment variables: {missing}"
