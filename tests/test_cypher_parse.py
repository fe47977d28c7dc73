"""Every query module and every statement the Neo4j backend sends parse with Neo4j's own Cypher 5 parser.

The parser is npm's @neo4j-cypher/language-support, run by tools/cypher-lint/lint.mjs; install it with
`npm ci --prefix tools/cypher-lint`. So a dialect mistake fails here, without a Neo4j server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lensgraph.store import copy
from lensgraph.store import neo4j as n4

ROOT = Path(__file__).resolve().parents[1]
LINT = ROOT / "tools" / "cypher-lint" / "lint.mjs"
PARSER = ROOT / "tools" / "cypher-lint" / "node_modules" / "@neo4j-cypher" / "language-support"
NODE = shutil.which("node")
QUERY_FILES = sorted((ROOT / "queries").glob("*.cypher"))  # variants (name.neo4j.cypher) included

pytestmark = pytest.mark.skipif(
    NODE is None or not PARSER.is_dir(),
    reason="Neo4j's Cypher parser is not installed: needs node and `npm ci --prefix tools/cypher-lint`",
)


def lint(paths: list[Path]) -> dict[str, list[dict]]:
    done = subprocess.run([NODE, str(LINT), *map(str, paths)], capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """One run of the parser (it takes a second to load) over every file and the backend's statements."""
    tmp = tmp_path_factory.mktemp("cypher")
    backend = tmp / "neo4j_backend.cypher"
    backend.write_text(";\n".join(n4.statements() + copy.statements()) + ";\n", encoding="utf-8")
    return lint([*QUERY_FILES, backend])


def _errors(found: list[dict]) -> list[str]:
    return [f"line {d['line']}:{d['column']}: {d['message']}" for d in found if d["severity"] == "error"]


@pytest.mark.parametrize("path", QUERY_FILES, ids=[p.name for p in QUERY_FILES])
def test_query_module_parses_on_neo4j(report: dict[str, list[dict]], path: Path) -> None:
    errors = _errors(report[str(path)])
    assert not errors, (f"{path.name} is not valid Neo4j Cypher 5; fix it in the subset both backends accept, "
                        f"or add {path.stem}.neo4j.cypher beside it:\n  " + "\n  ".join(errors))


def test_backend_ddl_and_writes_parse(report: dict[str, list[dict]]) -> None:
    backend = next(k for k in report if k.endswith("neo4j_backend.cypher"))
    assert not _errors(report[backend])


def test_the_parser_catches_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cypher"
    bad.write_text("MATCH (n:HiddenState) RETRUN n.uid", encoding="utf-8")
    good = tmp_path / "good.cypher"
    good.write_text("MATCH (n:HiddenState) WHERE n.pass = $p RETURN n.uid AS uid", encoding="utf-8")
    found = lint([bad, good])
    assert _errors(found[str(bad)]) and "RETRUN" in found[str(bad)][0]["message"]
    assert found[str(good)] == []  # an undeclared $parameter is not a problem
