"""The HTTP service through its client (FastAPI's TestClient), schemathesis against its OpenAPI spec, and its web
page in headless Chromium. The store is real (random-weight GPT-2, written by the CLI) and read-only here."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import struct
import threading
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lensgraph.catalog import Catalog, catalog_url
from lensgraph.service import create_app
from tests.conftest import FRANCE, IOI
from tests.test_cli import lg

MODEL = "random:gpt2-tiny"
TOKEN = "s3cret"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("service") / "store.lbug"
    proc = lg("ingest", "--model", MODEL, "--prompt", FRANCE, "--prompt", IOI, "--store", str(path))
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.fixture(scope="module")
def catalog(store: Path) -> Catalog:
    catalog = Catalog(catalog_url(str(store)))
    yield catalog
    catalog.close()


@pytest.fixture(scope="module")
def client(store: Path, catalog: Catalog) -> TestClient:
    return TestClient(create_app(str(store), catalog, token=TOKEN))


def _uid(client: TestClient, prompt: str) -> str:
    return next(p["uid"] for p in client.get("/api/passes").json() if p["prompt"] == prompt)


def test_passes_queries_and_svg(client: TestClient) -> None:
    passes = client.get("/api/passes").json()
    assert {p["prompt"] for p in passes} == {FRANCE, IOI} and all(p["complete"] for p in passes)
    index = client.get("/api/index").json()
    assert {p["uid"] for p in index} == {p["uid"] for p in passes}  # ingest indexed them in the catalog
    names = {q["name"]: q for q in client.get("/api/queries").json()}
    assert names["heads-promoting"]["params"][0] == {"name": "token", "type": "str", "required": True,
                                                      "default": None, "doc": names["heads-promoting"]["params"][0]["doc"]}
    assert names["pass-layers"]["subgraph"] is True

    uid = _uid(client, FRANCE)
    nodes = client.post("/api/queries/pass-layers", json={"params": {"pass": uid, "first": 1}}).json()["rows"]
    head = next(n for n in nodes if n["kind"] == "head" and n["head"] == 2)
    rows = client.post("/api/queries/heads-promoting",
                       json={"params": {"token": head["top_tokens"][0], "pass": uid}}).json()["rows"]
    assert {"layer": 1, "head": 2, "rank": 1}.items() <= next(r for r in rows if (r["layer"], r["head"]) == (1, 2)).items()

    r = client.post("/api/subgraphs/pass-layers/svg", json={"params": {"pass": uid, "first": 1, "last": 1}})
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    svg = ET.fromstring(r.content)
    tooltips = [a.get("{http://www.w3.org/1999/xlink}title") or "" for a in svg.iter("{http://www.w3.org/2000/svg}a")]
    assert any(t.endswith(f"{uid}/L1/head/h0") for t in tooltips)


@pytest.mark.parametrize("path, body, status, phrase", [
    ("/api/queries/no-such", {}, 404, "no query named 'no-such'"),
    ("/api/queries/heads-promoting", {}, 400, "needs --param token"),
    ("/api/queries/heads-promoting", {"params": {"token": " Paris", "k": "many"}}, 400, "k must be int"),
    ("/api/queries/heads-promoting", {"params": {"token": "Parisxyzzy"}}, 400, "not in any stored model"),
    ("/api/subgraphs/pass-layers/svg", {"params": {"pass": "nope@0"}}, 400, "no complete pass 'nope@0'"),
    ("/api/subgraphs/nope/svg", {"params": {}}, 404, "no subgraph query named 'nope'"),
    ("/api/cypher", {"query": "MATCH (p:Pass) RETURN p.nope"}, 400, "the query failed"),
])
def test_bad_requests_are_clear_4xx(client: TestClient, path: str, body: dict, status: int, phrase: str) -> None:
    r = client.post(path, json=body)
    assert r.status_code == status and phrase in r.json()["detail"], r.text


@pytest.mark.parametrize("query, refused", [
    ("MATCH (p:Pass) DETACH DELETE p", "DETACH is refused"),
    ("CREATE (:Meta {key: 'x', value: 'y'})", "CREATE is refused"),
    ("MATCH (p:Pass) SET p.complete = false", "SET is refused"),
    ("MATCH (p:Pass) RETURN p.uid; MATCH (p:Pass) DELETE p", "one statement at a time"),
    ("CALL db.clear() RETURN 1", "CALL db.clear is refused"),
    ("LOAD FROM '/etc/passwd' RETURN *", "LOAD is refused"),
    ("COPY Pass FROM '/tmp/x.csv'", "COPY is refused"),
])
def test_adhoc_cypher_cannot_write(client: TestClient, query: str, refused: str) -> None:
    r = client.post("/api/cypher", json={"query": query})
    assert r.status_code == 400 and refused in r.json()["detail"]
    assert len(client.get("/api/passes").json()) == 2


def test_adhoc_cypher_parameters_limits(client: TestClient) -> None:
    hostile = "x' OR true RETURN 1 //"  # a value, never formatted into the text: it simply matches nothing
    r = client.post("/api/cypher", json={"query": "MATCH (p:Pass) WHERE p.prompt = $p RETURN p.uid AS uid",
                                         "params": {"p": hostile}})
    assert r.json() == {"rows": [], "truncated": False}
    r = client.post("/api/cypher", json={"query": "MATCH (p:Pass) WHERE p.prompt = $p RETURN p.uid AS uid",
                                         "params": {"p": FRANCE}})
    assert r.json()["rows"] == [{"uid": _uid(client, FRANCE)}]
    r = client.post("/api/cypher", json={"query": "MATCH (h:HiddenState) RETURN h.uid AS uid", "limit": 3})
    assert len(r.json()["rows"]) == 3 and r.json()["truncated"] is True
    assert client.post("/api/cypher", json={"query": "RETURN 1", "limit": 0}).status_code == 422
    r = client.post("/api/cypher", json={"timeout_s": 0.001, "query":
                    "MATCH (a:HiddenState), (b:HiddenState), (c:HiddenState) WHERE a.norm + b.norm + c.norm > 1e9 "
                    "RETURN count(*) AS n"})
    assert r.status_code == 400 and "time limit" in r.json()["detail"]


def test_jobs_need_the_token_and_the_worker_runs_them(client: TestClient, catalog: Catalog, store: Path) -> None:
    body = {"model": MODEL, "prompts": ["Beats Music is owned by", {"prompt": "Audible.com is owned by"}]}
    assert client.post("/api/jobs", json=body).status_code == 401
    assert client.post("/api/jobs", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.post("/api/jobs", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 201
    ids = r.json()["ids"]
    assert [client.get(f"/api/jobs/{i}").json()["state"] for i in ids] == ["queued", "queued"]
    assert client.get("/api/jobs/999999").status_code == 404
    # the worker writes while the service reads: each request opens the store and sees the newest passes. The
    # worker runs in its own process, as deployed (docs/SERVICE.md): LadybugDB 0.22 can crash when a read-only
    # open in one thread of a process meets a commit in another thread of the same process
    worker = subprocess.Popen([sys.executable, "-m", "lensgraph", "worker", "--until-idle", "--poll", "0.1",
                               "--store", str(store)], env=dict(os.environ, HF_HUB_OFFLINE="1"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = set()
    while worker.poll() is None:
        seen.add(len(client.get("/api/passes").json()))
        time.sleep(0.05)
    _, err = worker.communicate()
    assert worker.returncode == 0 and "Traceback" not in err, err
    assert [client.get(f"/api/jobs/{i}").json()["state"] for i in ids] == ["done", "done"]
    assert len(client.get("/api/passes").json()) == 4 and seen <= {2, 3, 4}
    assert client.get("/api/jobs", params={"state": "done"}).json()["counts"]["done"] >= 4


def test_serve_refuses_to_expose_itself_without_a_token(store: Path) -> None:
    proc = lg("serve", "--host", "0.0.0.0", "--store", str(store))
    assert proc.returncode == 2 and "give --token" in proc.stderr


# -- schemathesis: no request makes a 500 ----------------------------------------------------------------------
def test_openapi_no_server_errors(store: Path, catalog: Catalog) -> None:
    """Every operation of the OpenAPI spec, with bodies and parameters generated from it (bounded examples)."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings

    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(str(store), catalog))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), database=None)
        def no_500(case: schemathesis.Case) -> None:
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])

        no_500()


# -- the web page in headless Chromium ------------------------------------------------------------------------
def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit, non-interlaced PNG (what Chromium's screenshots are)."""
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and color in (2, 6)
    chunks, pos = b"", 8
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"IDAT":
            chunks += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw, bpp = zlib.decompress(chunks), 3 if color == 2 else 4
    stride, rows, prev = width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a, b = line[i - bpp] if i >= bpp else 0, prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pred = {0: 0, 1: a, 2: b, 3: (a + b) // 2,
                    4: a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c}[f]
            line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


@pytest.fixture
def served(store: Path, catalog: Catalog) -> str:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(str(store), catalog), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                    reason="needs Chromium and chromedriver: apt-get install chromium chromium-driver")
def test_web_page_shows_the_svg_with_tooltips(served: str, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        driver.get(served)
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: len(Select(d.find_element(By.ID, "passes")).options) >= 2)
        Select(driver.find_element(By.ID, "query")).select_by_value("pass-layers")
        driver.find_element(By.NAME, "first").send_keys("1")
        driver.find_element(By.NAME, "last").send_keys("1")
        driver.find_element(By.ID, "render").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#figure svg g.node"))
        assert driver.find_element(By.ID, "status").text == ""

        shot = tmp_path / "page.png"
        driver.find_element(By.ID, "figure").screenshot(str(shot))
        width, height, rows = _png_pixels(shot.read_bytes())
        inked = sum(1 for row in rows for x in range(0, len(row), 4 if len(row) == width * 4 else 3)
                    if row[x] < 200)  # dark pixels: text and strokes of the figure
        assert width > 300 and height > 100 and inked > 500, (width, height, inked)

        node = next(n for n in driver.find_elements(By.CSS_SELECTOR, "#figure svg g.node")
                    if "/L1/head/h0" in (n.find_element(By.TAG_NAME, "a").get_attribute("xlink:title") or ""))
        ActionChains(driver).move_to_element(node).perform()
        tip = driver.find_element(By.ID, "tooltip")
        wait.until(lambda d: tip.is_displayed())
        assert "/L1/head/h0" in tip.text and "layer 1" in tip.text
    finally:
        driver.quit()
