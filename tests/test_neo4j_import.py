"""The bulk path (neo4j-admin import CSV files) and `lensgraph copy`, both on embedded stores (no server)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from lensgraph import schema
from lensgraph.cli import main
from lensgraph.errors import InputError
from lensgraph.store import open_store
from lensgraph.store import neo4j_import as ni
from lensgraph.store.copy import copy_store
from tests.conftest import FRANCE, Ingested


def _count(store, cypher: str, **params) -> int:  # noqa: ANN001
    return store.rows(cypher, params)[0]["n"]


COUNTS = {
    "HiddenState": "MATCH (h:HiddenState) RETURN count(*) AS n",
    "FLOWS_TO": "MATCH ()-[r:FLOWS_TO]->() RETURN count(*) AS n",
    "ACTIVATES": "MATCH ()-[r:ACTIVATES]->() RETURN count(*) AS n",
    "PROMOTES": "MATCH ()-[r:PROMOTES]->() RETURN count(*) AS n",
    "Token": "MATCH (t:Token) RETURN count(*) AS n",
    "Neuron": "MATCH (n:Neuron) RETURN count(*) AS n",
    "Model": "MATCH (m:Model) RETURN count(*) AS n",
    "Pass": "MATCH (p:Pass) WHERE p.complete = true RETURN count(*) AS n",
}


# -- neo4j-admin import files ------------------------------------------------------------------------
def test_headers_follow_the_import_tool_format() -> None:
    assert ni.header("HiddenState")[:4] == ["uid:ID(HiddenState)", "pass:string", "layer:long", "kind:string"]
    assert "top_tokens:string[]" in ni.header("HiddenState") and "top_probs:float[]" in ni.header("HiddenState")
    assert ni.header("ACTIVATES") == [":START_ID(HiddenState)", ":END_ID(Neuron)", "coef:double", "pre:double",
                                      "rank:long"]
    assert ni.header("PROMOTES")[:2] == [":START_ID(HiddenState)", ":END_ID(Token)"]
    assert ni.header("Model")[0] == "name:ID(Model)" and "complete:boolean" in ni.header("Pass")
    for table in (*schema.NODE_TABLES, *schema.REL_TABLES):  # every column, none twice
        names = [h.split(":")[0] for h in ni.header(table)]
        assert len(names) == len(ni._kinds(table))


def test_cells_keep_nulls_empty_strings_quotes_and_special_floats_apart() -> None:
    strings = ni.cells(pa.array(["", None, 'say "hi"', "a,b\nc"]), "STRING", "\x1f").to_pylist()
    assert strings == ['""', None, '"say ""hi"""', '"a,b\nc"']
    floats = ni.cells(pa.array([0.1, float("nan"), float("inf"), -float("inf"), None]), "DOUBLE", "\x1f")
    assert floats.to_pylist() == ["0.1", "NaN", "Infinity", "-Infinity", None]
    lists = ni.cells(pa.array([[" Paris", ";", '"'], [], None]), "STRING[]", "\x1f").to_pylist()
    assert lists == ['" Paris\x1f;\x1f"""', None, None]  # an empty list imports as an absent property
    with pytest.raises(InputError, match="delimiter"):
        ni.cells(pa.array([["a\x1fb"]]), "STRING[]", "\x1f")


def test_the_delimiter_avoids_every_vocabulary_character() -> None:
    assert ni.pick_delimiter([pa.array(["a", "b"])]) == "\x1f"
    assert ni.pick_delimiter([pa.array(["\x1f", "x\x1e"])]) == "\x1d"


def test_export_writes_importable_files(tiny: dict[str, Ingested], tmp_path: Path) -> None:
    ing = tiny["random:gpt2-tiny"]
    out = tmp_path / "import"
    result = CliRunner().invoke(main, ["export-neo4j-import", "--store", str(ing.path), "--out", str(out),
                                       "--model", "random:gpt2-tiny"])
    assert result.exit_code == 0, result.output
    store = ing.store
    lines = {}
    for table in (*ni.NODE_ORDER, *schema.REL_TABLES):
        head = (out / f"{table}.header.csv").read_text(encoding="utf-8").strip().split(",")
        assert head == ni.header(table)
        with open(out / f"{table}.csv", encoding="utf-8", newline="") as f:
            lines[table] = list(csv.reader(f))
        assert all(len(row) == len(head) for row in lines[table]), table
    # one model of the two in the store: its passes, its static nodes
    model = "random:gpt2-tiny"
    assert len(lines["Pass"]) == 2 and len(lines["Model"]) == 1
    assert len(lines["Token"]) == _count(store, "MATCH (t:Token) WHERE t.model = $m RETURN count(*) AS n", m=model)
    states = _count(store, "MATCH (h:HiddenState), (p:Pass) WHERE h.pass = p.uid AND p.model = $m "
                           "RETURN count(*) AS n", m=model)
    assert len(lines["HiddenState"]) == states
    assert len(lines["ACTIVATES"]) == _count(store, "MATCH (h:HiddenState)-[r:ACTIVATES]->(n:Neuron) "
                                                    "WHERE n.model = $m RETURN count(*) AS n", m=model)
    assert _count(store, COUNTS["Pass"]) == 4  # the store holds the other model's passes too
    # a state's lists round-trip through the array delimiter; the final state has no layer (an empty cell)
    script = (out / "import.sh").read_text()
    delimiter = chr(int(script.split("--array-delimiter=U+")[1].split()[0], 16))
    uid = ing.passes[FRANCE].uid
    final = next(r for r in lines["HiddenState"] if r[0] == f"{uid}/final")
    stored = store.rows("MATCH (h:HiddenState) WHERE h.uid = $u RETURN h.top_tokens AS t, h.top_probs AS p",
                        {"u": f"{uid}/final"})[0]
    names = [h.split(":")[0] for h in ni.header("HiddenState")]
    assert final[names.index("layer")] == ""
    assert final[names.index("top_tokens")].split(delimiter) == stored["t"]
    # single precision, as stored: the text is the shortest that reads back to the same float32
    assert [np.float32(x) for x in final[names.index("top_probs")].split(delimiter)] == list(np.float32(stored["p"]))
    # the script names every file, and the export refuses a non-empty folder
    assert "neo4j-admin \\\n  database \\\n  import \\\n  full" in script
    assert all(f"--nodes={t}={t}.header.csv,{t}.csv" in script for t in ni.NODE_ORDER)
    assert "--relationships=ACTIVATES=ACTIVATES.header.csv,ACTIVATES.csv" in script
    assert "CREATE CONSTRAINT hiddenstate_uid" in (out / "schema.cypher").read_text()
    again = CliRunner().invoke(main, ["export-neo4j-import", "--store", str(ing.path), "--out", str(out)])
    assert again.exit_code == 2 and "not empty" in again.output


def test_neuron_nan_and_empty_lists(tiny: dict[str, Ingested], tmp_path: Path) -> None:
    """W_O neurons have no input direction: in_norm NaN, empty in_* lists."""
    ing = tiny["random:llama-tiny"]
    ni.export_import(ing.store, tmp_path / "out", model="random:llama-tiny")
    names = [h.split(":")[0] for h in ni.header("Neuron")]
    with open(tmp_path / "out" / "Neuron.csv", encoding="utf-8", newline="") as f:
        attn = [r for r in csv.reader(f) if r[names.index("kind")] == "attn_o"]
    assert attn
    assert all(r[names.index("in_norm")] == "NaN" and r[names.index("in_top_tokens")] == "" for r in attn)


# -- copy ---------------------------------------------------------------------------------------------
def test_copy_between_embedded_stores_is_complete_and_idempotent(tiny: dict[str, Ingested], tmp_path: Path) -> None:
    source = tiny["random:gpt2-tiny"].store
    dest = open_store(str(tmp_path / "copy.lbug"))
    try:
        first = copy_store(source, dest)
        assert (first.models, first.copied, first.skipped) == (2, 4, 0)
        for table, cypher in COUNTS.items():
            assert _count(dest, cypher) == _count(source, cypher), table
        same = "MATCH (h:HiddenState) WHERE h.uid = $u RETURN h.top_tokens AS t, h.norm AS n, h.layer AS l"
        uid = f"{tiny['random:gpt2-tiny'].passes[FRANCE].uid}/L0/head/h0"
        assert dest.rows(same, {"u": uid}) == source.rows(same, {"u": uid})
        again = copy_store(source, dest)
        assert (again.models, again.copied, again.skipped, again.rows) == (0, 0, 4, 0)
        assert _count(dest, COUNTS["HiddenState"]) == _count(source, COUNTS["HiddenState"])
    finally:
        dest.close()


def test_copy_resumes_after_an_interrupted_pass(tiny: dict[str, Ingested], tmp_path: Path) -> None:
    ing = tiny["random:llama-tiny"]
    dest = open_store(str(tmp_path / "resume.lbug"))
    try:
        real = dest.write_pass
        done = []

        def crash_after_one(graph):  # noqa: ANN001, ANN202
            if done:
                real_copy = dest._copy

                def stop(table, data):  # noqa: ANN001, ANN202
                    if table == "ACTIVATES":
                        raise KeyboardInterrupt
                    real_copy(table, data)

                dest._copy = stop
                try:
                    return real(graph)
                finally:
                    dest._copy = real_copy
            done.append(graph.uid)
            return real(graph)

        dest.write_pass = crash_after_one
        with pytest.raises(KeyboardInterrupt):
            copy_store(ing.store, dest, model="random:llama-tiny")
        dest.write_pass = real
        assert _count(dest, COUNTS["Pass"]) == 1  # the interrupted one is hidden
        report = copy_store(ing.store, dest, model="random:llama-tiny")
        assert (report.models, report.copied, report.skipped) == (0, 1, 1)
        want = _count(ing.store, "MATCH (h:HiddenState), (p:Pass) WHERE h.pass = p.uid AND p.model = $m "
                                 "RETURN count(*) AS n", m="random:llama-tiny")
        assert _count(dest, COUNTS["HiddenState"]) == want
    finally:
        dest.close()


def test_copy_cli_filters_and_reports(tiny: dict[str, Ingested], tmp_path: Path) -> None:
    ing = tiny["random:gpt2-tiny"]
    uid = ing.passes[FRANCE].uid
    dest = tmp_path / "one.lbug"
    result = CliRunner().invoke(main, ["copy", "--from", str(ing.path), "--to", str(dest), "--pass", uid])
    assert result.exit_code == 0, result.output
    assert "1 passes copied, 0 already there, static nodes of 1 models" in result.output
    missing = CliRunner().invoke(main, ["copy", "--from", str(ing.path), "--to", str(dest), "--pass", "nope@0"])
    assert missing.exit_code == 2 and "no complete pass 'nope@0'" in missing.output
    check = open_store(str(dest), read_only=True)
    try:
        assert [r["uid"] for r in check.rows("MATCH (p:Pass) RETURN p.uid AS uid")] == [uid]
    finally:
        check.close()
