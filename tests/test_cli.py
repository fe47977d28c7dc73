"""The `lensgraph` command end to end, as a user runs it: real processes, a real store, real Graphviz.

Bad input must give one clear line, the documented exit code, no traceback, and write nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lensgraph.errors import EXIT_INPUT, EXIT_MODEL, EXIT_STORE
from tests.conftest import FRANCE, IOI

MODEL = "random:gpt2-tiny"


def lg(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")  # no Hub here: fail fast instead of retrying
    proc = subprocess.run([sys.executable, "-m", "lensgraph", *args], capture_output=True, text=True, env=env,
                          timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "store.lbug"
    prompts = path.parent / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": IOI}) + "\n" + json.dumps("Beats Music is owned by") + "\n")
    proc = lg("ingest", "--model", MODEL, "--prompt", FRANCE, "--prompts-file", str(prompts), "--store", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "3 passes written" in proc.stdout
    return path


def _passes(store: Path) -> list[dict]:
    proc = lg("passes", "--store", str(store), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_ingest_passes_query_export(store: Path, tmp_path: Path) -> None:
    passes = _passes(store)
    assert {p["prompt"] for p in passes} == {FRANCE, IOI, "Beats Music is owned by"}
    assert all(p["complete"] for p in passes)
    # the same ingest again writes nothing
    proc = lg("ingest", "--model", MODEL, "--prompt", FRANCE, "--store", str(store))
    assert proc.returncode == 0 and "0 passes written, 1 already stored" in proc.stdout
    france = next(p for p in passes if p["prompt"] == FRANCE)
    proc = lg("query", "pass-layers", "--param", f"pass={france['uid']}", "--param", "first=1", "--store",
              str(store), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    head = next(n for n in json.loads(proc.stdout) if n["kind"] == "head" and n["head"] == 2)
    token = head["top_tokens"][0]  # a token this head promotes (random weights: any token)
    proc = lg("query", "heads-promoting", "--token", token, "--param", f"pass={france['uid']}", "--store",
              str(store), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {"pass": france["uid"], "prompt": FRANCE, "layer": 1, "head": 2, "rank": 1,
            "prob": pytest.approx(head["top_probs"][0])} in rows
    assert all(1 <= r["rank"] <= 5 for r in rows)
    out = tmp_path / "fig.svg"
    proc = lg("export", "--pass", france["uid"], "--layers", "1:1", "-o", str(out), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    svg = ET.parse(out).getroot()
    tooltips = " ".join(a.get("{http://www.w3.org/1999/xlink}title", "") for a in svg.iter("{http://www.w3.org/2000/svg}a"))
    assert f"{france['uid']}/L1/head/h0" in tooltips and f"{france['uid']}/final" in tooltips


def test_queries_lists_the_modules() -> None:
    proc = lg("queries")
    assert proc.returncode == 0
    assert "heads-promoting:" in proc.stdout and "token (str, required)" in proc.stdout


def _refused(proc: subprocess.CompletedProcess, code: int, *phrases: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert proc.stderr.startswith("error: "), proc.stderr
    for phrase in phrases:
        assert phrase in proc.stderr


@pytest.mark.parametrize("args, code, phrases", [
    (["--prompt", "   "], EXIT_INPUT, ["prompt is empty", "nothing was written"]),
    (["--prompt", "word " * 300], EXIT_INPUT, ["tokens; random:gpt2-tiny takes at most 128"]),
    (["--prompt", FRANCE, "--target", " Paris is"], EXIT_INPUT, ["2 tokens (' Paris', ' is')"]),
    (["--prompt", FRANCE, "--position", "9"], EXIT_INPUT, ["position 9 is outside"]),
    ([], EXIT_INPUT, ["nothing to ingest"]),
])
def test_bad_ingest_input_writes_nothing(args: list[str], code: int, phrases: list[str], tmp_path: Path) -> None:
    path = tmp_path / "s.lbug"
    _refused(lg("ingest", "--model", MODEL, *args, "--store", str(path)), code, *phrases)
    assert not path.exists()


def test_a_bad_circuit_budget_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LENSGRAPH_CIRCUIT_CACHE_GB", "lots")
    path = tmp_path / "s.lbug"
    _refused(lg("ingest", "--model", MODEL, "--prompt", FRANCE, "--store", str(path)), EXIT_INPUT,
             "LENSGRAPH_CIRCUIT_CACHE_GB='lots'")
    assert not path.exists()


def test_one_bad_row_in_a_file_writes_nothing(store: Path, tmp_path: Path) -> None:
    before = len(_passes(store))
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps(["A fine prompt", "", {"prompt": "x", "target": " two words"}]))
    _refused(lg("ingest", "--model", MODEL, "-f", str(prompts), "--store", str(store)), EXIT_INPUT,
             "2 of 3 prompts are invalid", f"{prompts}[1]: the prompt is empty", f"{prompts}[2]: target")
    assert len(_passes(store)) == before
    bad_json = tmp_path / "p.jsonl"
    bad_json.write_text('"ok"\n{"prompt": \n')
    _refused(lg("ingest", "--model", MODEL, "-f", str(bad_json), "--store", str(store)), EXIT_INPUT,
             f"{bad_json}:2: not valid JSON")


def test_unknown_model_and_architecture(tmp_path: Path) -> None:
    path = tmp_path / "s.lbug"
    _refused(lg("ingest", "--model", "no-such-org/no-such-model", "--prompt", "hi", "--store", str(path)),
             EXIT_MODEL, "cannot find model")
    _refused(lg("ingest", "--model", "random:nope", "--prompt", "hi", "--store", str(path)), EXIT_MODEL,
             "unknown random config")
    local = tmp_path / "bert"
    local.mkdir()
    (local / "config.json").write_text(json.dumps({"model_type": "bert"}))
    _refused(lg("ingest", "--model", str(local), "--prompt", "hi", "--store", str(path)), EXIT_MODEL,
             "'bert' is not supported", "gpt2", "llama")
    assert not path.exists()


def test_bad_stores(store: Path, tmp_path: Path) -> None:
    _refused(lg("ingest", "--model", MODEL, "--prompt", "hi", "--store", "/proc/lensgraph/s.lbug"), EXIT_STORE,
             "not a writable directory")
    _refused(lg("passes", "--store", str(tmp_path / "absent.lbug")), EXIT_STORE, "no store at")
    from lensgraph.store import open_store

    old = tmp_path / "old.lbug"
    s = open_store(str(old))
    s.rows("MATCH (m:Meta) WHERE m.key = 'schema_version' SET m.value = '0'")
    s.close()
    _refused(lg("ingest", "--model", MODEL, "--prompt", "hi", "--store", str(old)), EXIT_STORE, "schema v0")


def test_bad_queries(store: Path) -> None:
    s = str(store)
    _refused(lg("query", "no-such-query", "--store", s), EXIT_INPUT, "no query named")
    _refused(lg("query", "heads-promoting", "--store", s), EXIT_INPUT, "needs --param token")
    _refused(lg("query", "heads-promoting", "--token", " Paris", "--param", "k=many", "--store", s), EXIT_INPUT,
             "k must be int")
    _refused(lg("query", "heads-promoting", "--token", " Paris", "--param", "nope=1", "--store", s), EXIT_INPUT,
             "no parameter nope")
    _refused(lg("query", "heads-promoting", "--token", "Parisxyzzy", "--store", s), EXIT_INPUT,
             "not in any stored model's vocabulary")
    _refused(lg("export", "--pass", "nope@0", "-o", "/tmp/x.svg", "--store", s), EXIT_INPUT, "no pass")


def test_upgrade_command_on_a_current_store(store: Path) -> None:
    """`lensgraph upgrade` on a store already at the current schema is a no-op that says so (the v1 upgrade
    itself is tested in tests/test_store.py)."""
    from lensgraph import schema

    result = lg("upgrade", "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert f"graph schema v{schema.SCHEMA_VERSION}" in result.stdout
