"""The Graphviz exporter: golden DOT text, SVG structure, escaping, themes, large graphs, bad input, the
`export` command, and real SmolLM2 figures checked in headless Chromium.

Regenerate the golden files after an intended change with LENSGRAPH_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from bench.export import synthetic
from export import render, to_dot
from export.flow import LARGE_NODES
from export.theme import LIGHT, PRINT
from lensgraph.errors import EXIT_INPUT, LensgraphError
from lensgraph.subgraph import Subgraph

GOLDEN = Path(__file__).parent / "golden"
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"
TRICKY = [" ", "\n", '"quoted"', "<b>&amp;", "東京", "Привет", "a\\nb", "\t"]  # source tokens s0..s7
P = "m@0123456789abcdef"


def small() -> Subgraph:
    """One layer, one head, eight source positions with tokens that need escaping."""
    def state(kind: str, rank: int | None, head: int | None = None, src: int | None = None, **extra) -> dict:
        uid = f"{P}/L0/{kind}" + (f"/h{head}" if head is not None else "") + (f"/s{src}" if src is not None else "")
        i = len(nodes)
        nodes.append({"uid": uid, "layer": 0, "kind": kind, "head": head, "position": 7 if src is None else src,
                      "source_token": TRICKY[7 if src is None else src], "norm": 2.0 + i, "entropy": 0.5 * i,
                      "top_tokens": [TRICKY[i % 8], " Paris"], "top_probs": [0.6, 0.2], "bottom_tokens": [" zz"],
                      "bottom_probs": [1e-6], "target_rank": rank, "target_prob": None if rank is None else 1 / rank,
                      **extra})
        return uid

    nodes: list[dict] = []
    edges: list[dict] = []
    e = lambda a, b, kind, score: edges.append({"source": a, "target": b, "kind": kind, "score": score, "rank": 1})  # noqa: E731
    pre, ln1, q, hd = state("resid_pre", 3000), state("ln1", 400), state("query", 50, 0), state("head", 7, 0)
    e(pre, ln1, "norm", 1.0)
    e(ln1, q, "read", 1.0)
    e(q, hd, "query", 1.0)
    for s in range(8):
        a = (s + 1) / 36
        e(state("key", 2, 0, s), q, "key", a)
        e(state("value", 1, 0, s), hd, "value", a)
    concat, attn, mid, ln2 = state("concat", 6), state("attn_out", 2), state("resid_mid", 5), state("ln2", 9)
    neuron = "m/L0/mlp/n42"
    nodes.append({"uid": neuron, "layer": 0, "kind": "mlp", "idx": 42, "sign": -1, "entropy": 3.0,
                  "top_tokens": [" Rome"], "top_probs": [0.3]})
    mlp, post = state("mlp_out", 1), state("resid_post", 1)
    for a, b, kind, score in [(hd, concat, "sum", 1.0), (concat, attn, "sum", 1.0), (pre, mid, "residual", 0.3),
                              (attn, mid, "sum", 0.7), (mid, ln2, "norm", 1.0), (ln2, mlp, "read", 1.0),
                              (ln2, neuron, "activates", 2.5), (mid, post, "residual", 0.4), (mlp, post, "sum", 0.6)]:
        e(a, b, kind, score)
    return Subgraph(nodes, edges, {"pass": P, "prompt": 'He said "<hi>"', "target": " Paris", "model": "m"})


def trajectory_graph() -> Subgraph:
    nodes = [{"uid": f"{P}/L{i}/resid_post", "layer": i, "kind": "resid_post", "target_rank": r,
              "target_prob": p} for i, (r, p) in enumerate([(20000, 1e-5), (812, 1e-4), (40, 0.003), (3, 0.1),
                                                             (1, 0.42), (1, 0.77)])]
    return Subgraph(nodes, [], {"prompt": "The capital of France is", "target": " Paris", "model": "m"})


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LENSGRAPH_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with LENSGRAPH_UPDATE_GOLDEN=1 once"
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; if intended, LENSGRAPH_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("name, make", [
    ("flow_small.dot", lambda: to_dot(small())),
    ("flow_small_print.dot", lambda: to_dot(small(), theme="print", title="Figure 1", caption="A caption.")),
    ("attention_small.dot", lambda: to_dot(small(), "attention")),
    ("trajectory_small.dot", lambda: to_dot(trajectory_graph(), "trajectory", caption="Rank by layer.")),
])
def test_golden_dot(name: str, make) -> None:  # noqa: ANN001
    golden(name, make())


def svg_of(graph: Subgraph, tmp_path: Path, **kwargs) -> tuple[bytes, ET.Element]:
    out = render(graph, tmp_path / "fig.svg", **kwargs)
    data = out.read_bytes()
    return data, ET.fromstring(data)


def groups(svg: ET.Element, css: str) -> list[ET.Element]:
    return [g for g in svg.iter(f"{SVG}g") if css in (g.get("class") or "").split()]


def tooltip(g: ET.Element) -> str | None:
    a = g.find(f"{SVG}a") if g.find(f"{SVG}a") is not None else g.find(f".//{SVG}a")
    return None if a is None else a.get(f"{XLINK}title")


def drawn(g: ET.Element, tag: str) -> ET.Element:
    """The first shape of this kind (path, ellipse) inside a node or edge group."""
    return next(g.iter(f"{SVG}{tag}"))


def texts(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text")]


def test_flow_svg_structure(tmp_path: Path) -> None:
    graph = small()
    data, svg = svg_of(graph, tmp_path)
    states = groups(svg, "state")
    assert len(states) == len(graph.nodes)
    assert len(groups(svg, "edge")) == len(graph.edges)  # (the invisible edge placing the legend is not drawn)
    tips = [tooltip(g) for g in states]
    assert all(tips), "every node has a tooltip"
    head = next(t for t in tips if t.endswith("/L0/head/h0"))
    assert head.startswith("layer 0 · head h0 · attention\n")
    assert "top: '<b>&amp;' 0.6, ' Paris' 0.2" in head and "bottom: ' zz' 1e-06" in head
    assert "target ' Paris': rank 7, p 0.143" in head and "entropy" in head
    legend = groups(svg, "legend")
    assert len(legend) == 1
    legend_text = " ".join(t.text or "" for t in legend[0].iter(f"{SVG}text"))
    assert "Fill: rank of target ' Paris'" in legend_text and "> 1000" in legend_text
    assert {"Layer 0", "attention", "MLP"} <= set(texts(svg))  # the layer and sub-block clusters
    assert data.count(b"font-family=\"'DejaVu Sans',Verdana,Arial,sans-serif\"") > 10
    # fills follow the target rank: rank 1 the darkest class, > 1000 the lightest, no rank white
    fill = {tooltip(g).rsplit("\n", 1)[-1]: next(e.get("fill") for e in g.iter() if e.get("fill") not in (None, "none"))
            for g in states}
    assert fill[f"{P}/L0/resid_post"] == LIGHT.ramp[0] and fill[f"{P}/L0/resid_pre"] == LIGHT.ramp[-1]
    assert fill["m/L0/mlp/n42"] == LIGHT.no_target


def test_edges_encode_scores(tmp_path: Path) -> None:
    _, svg = svg_of(small(), tmp_path)
    widths: dict[str, list[tuple[float, float]]] = {}
    for g in groups(svg, "edge"):
        tip, path = tooltip(g), next(g.iter(f"{SVG}path"), None)
        if not tip or path is None:
            continue
        kind, score = re.match(r"(\w+): score ([\d.e-]+)", tip).groups()
        widths.setdefault(kind, []).append((float(score), float(path.get("stroke-width") or 1)))
        if kind in ("residual", "sum", "norm", "layer"):
            r, gr, b = (int(path.get("stroke")[i:i + 2], 16) for i in (1, 3, 5))
            assert r == gr == b, "residual and accumulation edges are grey"
    keys = sorted(widths["key"])
    assert [w for _, w in keys] == sorted(w for _, w in keys) and keys[0][1] < keys[-1][1]
    assert widths["activates"] == [(2.5, 4.0)]  # the strongest of its kind is the widest


def test_escaping(tmp_path: Path) -> None:
    _, svg = svg_of(small(), tmp_path)
    shown = texts(svg)
    for visible in ["␣", "↵", '"quoted"', "<b>&amp;", "東京", "Привет", "a\\nb", "⇥"]:
        assert visible in shown, visible
    title = " ".join(shown)
    assert '“He said "<hi>"”' in title
    dot = to_dot(small())
    assert "&lt;b&gt;&amp;amp;" in dot and '\\"quoted\\"' in dot and "a\\\\nb" in dot


def test_deterministic(tmp_path: Path) -> None:
    for view, graph in [("flow", small()), ("attention", small()), ("trajectory", trajectory_graph()),
                        ("flow", synthetic(4, 9, 8))]:
        a = render(graph, tmp_path / "a.svg", view=view).read_bytes()
        b = render(graph, tmp_path / "b.svg", view=view).read_bytes()
        assert a == b, view
    a = render(small(), tmp_path / "a.pdf").read_bytes()
    time.sleep(1.1)
    assert a == render(small(), tmp_path / "b.pdf").read_bytes()
    assert a.startswith(b"%PDF") and render(small(), tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")


def test_print_theme_is_greyscale(tmp_path: Path) -> None:
    for view, graph in [("flow", small()), ("attention", small()), ("trajectory", trajectory_graph())]:
        data, _ = svg_of(graph, tmp_path, view=view, theme="print")
        colours = set(re.findall(rb'(?:fill|stroke)="#([0-9a-f]{6})', data))
        assert colours, view
        assert all(c[0:2] == c[2:4] == c[4:6] for c in colours), (view, colours)


def test_fill_ramps_darkest_first() -> None:
    for theme in (LIGHT, PRINT):
        luma = [sum(w * int(c[i:i + 2], 16) for w, i in ((0.299, 1), (0.587, 3), (0.114, 5))) for c in theme.ramp]
        assert luma == sorted(luma), theme.name  # monotone: the order survives greyscale printing


def test_attention_view(tmp_path: Path) -> None:
    graph = small()
    _, svg = svg_of(graph, tmp_path, view="attention")
    lines = groups(svg, "attention")
    assert len(lines) == sum(e["kind"] == "key" for e in graph.edges) == 8
    width = {tooltip(g).split("attention ")[-1]: float(drawn(g, "path").get("stroke-width")) for g in lines}
    assert [width[k] for k in sorted(width, key=float)] == sorted(width.values())
    assert len(groups(svg, "source")) == 8 and len(groups(svg, "target")) == 1
    assert "layer 0 · head 0" in texts(svg) and groups(svg, "legend")
    with pytest.raises(LensgraphError, match="no attention edges for head 3"):
        render(graph, tmp_path / "x.svg", view="attention", heads=[0, 3])


def test_trajectory_view(tmp_path: Path) -> None:
    _, svg = svg_of(trajectory_graph(), tmp_path, view="trajectory")
    points = groups(svg, "point")
    assert len(points) == 2 * 6  # probability and rank panels
    assert "layer 4: ' Paris' rank 1, probability 0.42" in tooltip(points[4])
    ys = {}
    for g in points:
        layer = int(re.match(r"layer (\d+)", tooltip(g)).group(1))
        ys.setdefault(layer, []).append(float(drawn(g, "ellipse").get("cy")))
    # SVG y grows downwards: a better rank / higher probability is higher up
    assert ys[5][0] < ys[2][0] < ys[0][0] and ys[4][1] < ys[2][1] < ys[0][1]
    assert {"10,000", "100,000", "1", "0.5"} <= set(texts(svg))


def test_large_graphs_use_fixed_positions(tmp_path: Path) -> None:
    graph = synthetic(10, 9, 10)
    assert len(graph.nodes) > 2000 > LARGE_NODES
    dot = to_dot(graph)
    assert "rankdir" not in dot and dot.count('pos="') == len(graph.nodes) + 1
    t = time.perf_counter()
    _, svg = svg_of(graph, tmp_path)
    assert time.perf_counter() - t < 10
    assert len(groups(svg, "state")) == len(graph.nodes)
    assert len(groups(svg, "cluster")) == 10 * 3  # per layer: the layer, attention and MLP boxes


def test_layout_time_limit(tmp_path: Path) -> None:
    with pytest.raises(LensgraphError, match=r"did not finish the layout within 0.001 s"):
        render(synthetic(3, 9, 5), tmp_path / "x.svg", timeout_s=0.001)


@pytest.mark.parametrize("graph, kwargs, phrase", [
    (Subgraph([], []), {}, "the subgraph is empty"),
    (Subgraph([{"uid": "a"}, {"uid": "a"}], []), {}, "node a appears twice"),
    (Subgraph([{"uid": "a"}], [{"source": "a", "target": "b", "kind": "sum"}]), {}, "its target is not a node"),
    (small(), {"view": "sankey"}, "no view 'sankey'"),
    (small(), {"theme": "neon"}, "no theme 'neon'"),
    (trajectory_graph(), {"view": "attention"}, "no attention (FLOWS_TO 'key') edges"),
    (Subgraph([{"uid": "a", "kind": "head"}], []), {"view": "trajectory"}, "needs resid_post states"),
])
def test_bad_input(graph: Subgraph, kwargs: dict, phrase: str, tmp_path: Path) -> None:
    with pytest.raises(LensgraphError, match=re.escape(phrase)) as err:
        render(graph, tmp_path / "x.svg", **kwargs)
    assert err.value.exit_code == EXIT_INPUT
    with pytest.raises(LensgraphError, match="cannot export 'gif'"):
        render(small(), tmp_path / "x.gif")


# ---- the command line ----------------------------------------------------------------------------------


def lg(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "lensgraph", *args], capture_output=True, text=True, env=env,
                          timeout=600)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    path = str(tmp_path_factory.mktemp("export-cli") / "store.lbug")
    proc = lg("ingest", "--model", "random:llama-tiny", "--prompt", "The capital of France is", "--store", path)
    assert proc.returncode == 0, proc.stderr
    passes = json.loads(lg("passes", "--store", path, "--format", "json").stdout)
    return path, passes[0]["uid"]


def test_cli_export(cli_store: tuple[str, str], tmp_path: Path) -> None:
    store, uid = cli_store
    out = tmp_path / "f.svg"
    proc = lg("export", "--prompt", "The capital of France is", "--layers", "-1:", "-o", str(out), "--store", store,
              "--title", "", "--caption", "Figure: the last layer.")
    assert proc.returncode == 0, proc.stderr
    assert "flow of" in proc.stdout and "layers" in proc.stdout
    svg = ET.parse(out).getroot()
    assert "Figure: the last layer." in texts(svg) and groups(svg, "legend")
    proc = lg("export", "--query", "visit-graph", "--pass", uid, "--param", "first=0", "--param", "k=2",
              "-o", str(tmp_path / "v.dot"), "--store", store, "--theme", "print")
    assert proc.returncode == 0, proc.stderr
    assert "digraph lensgraph" in (tmp_path / "v.dot").read_text() and "visit-graph" in proc.stdout
    proc = lg("export", "--pass", uid, "--view", "attention", "--heads", "0,1", "--layers", "0:1",
              "-o", str(tmp_path / "a.pdf"), "--store", store)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a.pdf").read_bytes().startswith(b"%PDF")
    proc = lg("export", "--pass", uid, "--view", "trajectory", "-o", str(tmp_path / "t.svg"), "--store", store)
    assert proc.returncode == 0, proc.stderr
    n_layers = len(groups(ET.parse(tmp_path / "t.svg").getroot(), "point")) // 2
    assert n_layers >= 2


@pytest.mark.parametrize("args, phrase", [
    (["--query", "pass-layers", "--param", "pass=UID", "--layers", "1:2"], "--layers is for the default"),
    (["--query", "nope"], "no subgraph query named 'nope'"),
    (["--query", "visit-graph", "--param", "pass=UID", "--param", "k=lots"], "parameter k must be int"),
    (["--query", "visit-graph"], "needs --param pass="),
    (["--pass", "UID", "--param", "k=1"], "--param goes with --query"),
    (["--pass", "UID", "--heads", "one"], "--heads takes numbers"),
    (["--pass", "UID", "--format", "dot", "-o", "x.gif"], None),
    (["-o", "x.svg"], "--pass UID or --prompt TEXT"),
    (["--prompt", "never ingested"], "no stored pass of the prompt"),
    (["--pass", "UID", "--view", "attention", "--heads", "99"], "edges for heads 99; its heads are 0, 1"),
    (["--pass", "UID", "-o", "x.gif"], "cannot export 'gif'"),
])
def test_cli_export_refuses(args: list[str], phrase: str | None, cli_store: tuple[str, str], tmp_path: Path) -> None:
    store, uid = cli_store
    args = [str(tmp_path / a) if a.startswith("x.") else a.replace("UID", uid) for a in args]  # outputs in tmp_path
    if "-o" not in args:
        args += ["-o", str(tmp_path / "x.svg")]
    proc = lg("export", *args, "--store", store)
    if phrase is None:  # --format wins over the suffix
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == EXIT_INPUT, proc.stderr
    assert proc.stderr.startswith("error: ") and phrase in proc.stderr, proc.stderr
    assert not (tmp_path / "x.svg").exists()


# ---- real SmolLM2 figures in a browser ------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium); "
                                    "the browser checks of the SVG figures need it")
CHECK_JS = """
const svg = document.querySelector('svg'), box = svg.getBoundingClientRect();
const texts = [...svg.querySelectorAll('text')];
const outside = texts.filter(t => { const r = t.getBoundingClientRect();
  return r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 ||
                         r.bottom > box.bottom + 1); }).map(t => t.textContent);
document.getElementById('out').textContent = JSON.stringify(
  {texts: texts.length, drawn: texts.filter(t => t.getBoundingClientRect().width > 0).length, outside});
"""


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'profile'}", "--hide-scrollbars", "--force-device-scale-factor=1"]
    proc = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Rows of RGB(A) bytes of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 4
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


@pytest.fixture(scope="module")
def smol_figures(smol, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Subgraph, Path]]:  # noqa: ANN001
    from queries.subgraphs import visit_graph
    from tests.conftest import FRANCE

    uid = smol.passes[FRANCE].uid
    tmp = tmp_path_factory.mktemp("smol-figures")
    out = {}
    for name, first in [("1 layer", 29), ("6 layers", 24)]:
        graph = visit_graph(smol.store, uid, first, 29)
        out[name] = (graph, render(graph, tmp / f"{name.replace(' ', '_')}.svg", caption=f"SmolLM2, {name}."))
    return out


@pytest.mark.parametrize("name", ["1 layer", "6 layers"])
def test_smollm2_reduced_graph_svg(name: str, smol_figures) -> None:  # noqa: ANN001
    graph, path = smol_figures[name]
    svg = ET.parse(path).getroot()
    assert len(groups(svg, "state")) == len(graph.nodes) and all(tooltip(g) for g in groups(svg, "state"))
    layers = {n["layer"] for n in graph.nodes if n.get("layer") is not None}
    assert len(layers) == int(name.split()[0])
    assert {f"Layer {layer}" for layer in layers} <= set(texts(svg))
    assert any(n.get("kind") == "mlp" for n in graph.nodes)  # the reduced graph's neurons are drawn
    final = next(g for g in groups(svg, "state") if tooltip(g).endswith("/final"))
    assert "target ' Paris': rank 1" in tooltip(final)


@needs_chromium
@pytest.mark.parametrize("name", ["1 layer", "6 layers"])
def test_smollm2_figure_in_chromium(name: str, smol_figures, tmp_path: Path) -> None:  # noqa: ANN001
    _, path = smol_figures[name]
    svg_text = path.read_text(encoding="utf-8")
    page = tmp_path / "check.html"
    page.write_text(f'<html><body style="margin:0">{svg_text[svg_text.index("<svg"):]}<pre id="out"></pre>'
                    f"<script>{CHECK_JS}</script></body></html>", encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    result = json.loads(htmllib.unescape(re.search(r'<pre id="out">(.*?)</pre>', dom, re.S).group(1)))
    assert result["texts"] > 20 and result["drawn"] == result["texts"], result
    assert result["outside"] == [], f"labels outside the canvas: {result['outside'][:10]}"
    shot = tmp_path / "shot.png"
    frame = tmp_path / "frame.html"
    frame.write_text(f'<html><body style="margin:0;background:#fff"><img src="{path.as_uri()}" '
                     'style="width:100vw;height:100vh;object-fit:contain"></body></html>', encoding="utf-8")
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=900,600", frame.as_uri())
    width, bpp, rows = png_pixels(shot)
    assert len(rows) == 600 and width == 900
    pixels = [row[i:i + 3] for row in rows for i in range(0, len(row), bpp)]
    white = sum(p == b"\xff\xff\xff" for p in pixels)
    ink = [i for i, p in enumerate(pixels) if max(p) < 160]  # text, outlines, dark fills
    assert white < 0.97 * len(pixels), "the screenshot is blank"
    assert len(ink) > 300, "no ink (text, outlines, dark fills) in the screenshot"
    xs, ys = [i % width for i in ink], [i // width for i in ink]  # the figure fills the width or the height
    assert max(xs) - min(xs) > 0.6 * width or max(ys) - min(ys) > 0.6 * len(rows), "ink in only part of the figure"
    assert len(set(pixels)) > 20, "the screenshot is one flat colour"
