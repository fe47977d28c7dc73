"""The HTTP API: submit prompts, follow jobs, list passes, run named queries, render subgraphs as SVG,
and run read-only ad-hoc Cypher. OpenAPI docs at /docs; the web page at /.

The worker is the store's only writer. LadybugDB lets other processes open the same file read-only while
it writes, and a reader sees the passes committed when it opened; so every request opens its own read-only
store and sees the newest complete passes. An open can be refused for a moment while the writer
checkpoints; it is retried briefly, then answered 503.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from lensgraph.catalog import STATES, Catalog
from lensgraph.errors import EXIT_STORE, LensgraphError, StoreError
from lensgraph.store import Store, open_store

STATIC = Path(__file__).parent / "static"
OPEN_RETRY_S = 5.0  # how long a request waits for a store that is checkpointing
# Stores open at once: each LadybugDB Database reserves 8 TiB of address space (its mmap), so about 16 fit in
# a process; further requests wait for a slot. Queries are CPU-bound, so more would not be faster anyway.
MAX_READERS = int(os.environ.get("LENSGRAPH_SERVICE_READERS", "4"))
JOB_STATES = Literal["queued", "running", "done", "failed"]
assert set(STATES) == set(JOB_STATES.__args__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- request bodies ------------------------------------------------------------------------------------
class PromptIn(BaseModel):
    prompt: str = Field(min_length=1, max_length=100_000)
    target: str | None = Field(None, min_length=1, max_length=1000, description="One token, e.g. ' Paris'.")


class SubmitIn(BaseModel):
    model: str = Field(min_length=1, max_length=300, examples=["smollm2-135m"])
    prompts: list[str | PromptIn] = Field(min_length=1, max_length=10_000)
    target: str | None = Field(None, min_length=1, max_length=1000, description="For prompts without their own.")
    position: int | None = Field(None, ge=-100_000, le=100_000)
    top_k: int = Field(10, ge=1, le=100)
    max_attempts: int = Field(3, ge=1, le=100)


class QueryIn(BaseModel):
    params: dict[str, Any] = Field(default_factory=dict, examples=[{"token": " Paris", "k": 5}])


class RenderIn(QueryIn):
    view: Literal["flow", "attention", "trajectory"] = "flow"
    theme: Literal["light", "print"] = "light"
    title: str | None = Field(None, max_length=500)
    timeout_s: float = Field(30.0, gt=0, le=120)


class CypherIn(BaseModel):
    query: str = Field(min_length=1, max_length=20_000, examples=["MATCH (p:Pass) RETURN p.uid AS uid"])
    params: dict[str, Any] = Field(default_factory=dict)
    limit: int = Field(1000, ge=1, le=10_000)
    timeout_s: float = Field(10.0, gt=0, le=60)


class _Prompt(NamedTuple):
    """What Catalog.submit reads of a prompt (ingest's PromptSpec; the service does not import ingest/)."""

    prompt: str
    target: str | None
    where: str
    attribute: bool = False


def create_app(store: str, catalog: Catalog, token: str | None = None) -> FastAPI:
    """The app over one store and its catalog; with a token, job submission needs `Authorization: Bearer`."""
    app = FastAPI(title="lensgraph", version=_version(),
                  description="Flow graphs of language-model forward passes: queue prompts, query the graphs, "
                  "render figures. Write endpoints need a bearer token when the service has one.")
    bearer = HTTPBearer(auto_error=False)

    def writer(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if token and (creds is None or not hmac.compare_digest(creds.credentials.encode(), token.encode())):
            raise HTTPException(401, "this endpoint needs the service's token: Authorization: Bearer <token>",
                                headers={"WWW-Authenticate": "Bearer"})

    readers = threading.BoundedSemaphore(MAX_READERS)

    @contextmanager
    def reader() -> Iterator[Store]:
        """A read-only store for one request: 503 when it cannot be opened; a query that fails is a 400."""
        with readers:
            with _opened(store) as db:
                yield db

    @contextmanager
    def _opened(address: str) -> Iterator[Store]:
        deadline = time.monotonic() + OPEN_RETRY_S
        while True:
            try:
                db = open_store(address, read_only=True)
                break
            except StoreError as e:
                if "retry" not in str(e) or time.monotonic() > deadline:  # checkpointing: wait, else give up
                    raise HTTPException(503, str(e), headers={"Retry-After": "5"}) from None
                time.sleep(0.1)
        try:
            yield db
        except StoreError as e:
            raise HTTPException(400, str(e)) from None
        except (ValueError, TypeError) as e:  # LadybugDB: ValueError for some values (mixed lists)
            raise HTTPException(400, f"the query's parameters cannot be used: {e}") from None
        finally:
            db.close()

    @app.exception_handler(LensgraphError)
    def _lensgraph_error(_: Request, e: LensgraphError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=503 if e.exit_code == EXIT_STORE else 400)

    # -- the web page ---------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    # -- jobs -----------------------------------------------------------------------------------------
    @app.post("/api/jobs", status_code=201, dependencies=[Depends(writer)], tags=["jobs"])
    def submit(body: SubmitIn) -> dict[str, list[int]]:
        """Queue prompts for the worker; the worker checks each against the model (see the job's error)."""
        specs = [_Prompt(p, body.target, f"request[{i}]") if isinstance(p, str)
                 else _Prompt(p.prompt, p.target or body.target, f"request[{i}]")
                 for i, p in enumerate(body.prompts)]
        return {"ids": catalog.submit(body.model, specs, body.position, body.top_k, body.max_attempts)}

    @app.get("/api/jobs", tags=["jobs"])
    def jobs(state: JOB_STATES | None = None, limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict[str, Any]:
        """Counts by state and the newest jobs."""
        return {"counts": catalog.counts(), "jobs": catalog.jobs(state, limit=limit)}

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def job(job_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)]) -> dict[str, Any]:
        found = catalog.job(job_id)
        if found is None:
            raise HTTPException(404, f"no job {job_id}")
        return found

    # -- passes and queries ---------------------------------------------------------------------------
    @app.get("/api/passes", tags=["passes"])
    def passes(model: str = "") -> list[dict[str, Any]]:
        """The complete passes in the store."""
        from queries import run

        with reader() as db:
            return _finite(run(db, "passes", model=model))

    @app.get("/api/index", tags=["passes"])
    def index(model: str = "", limit: Annotated[int, Query(ge=1, le=100_000)] = 1000) -> list[dict[str, Any]]:
        """The catalog's pass index: timings, row counts, versions of lensgraph, torch and transformers."""
        return catalog.passes(model, limit)

    @app.get("/api/queries", tags=["queries"])
    def queries() -> list[dict[str, Any]]:
        """The named queries and their parameters; `subgraph` ones can be rendered as SVG."""
        from queries import catalog as query_catalog
        from queries.subgraphs import SUBGRAPH_QUERIES

        out = [{"name": q.name, "summary": q.summary, "subgraph": False,
                "params": [{"name": p.name, "type": p.type, "required": p.required,
                            "default": None if p.required else p.default, "doc": p.doc} for p in q.params]}
               for q in query_catalog().values()]
        for name, fn in SUBGRAPH_QUERIES.items():
            out.append({"name": name, "summary": (fn.__doc__ or "").split("\n")[0], "subgraph": True,
                        "params": _subgraph_params(fn)})
        return out

    @app.post("/api/queries/{name}", tags=["queries"])
    def query(name: str, body: QueryIn) -> dict[str, Any]:
        """Run a named query; parameters as JSON (checked and typed by the query's header)."""
        from queries import catalog as query_catalog
        from queries import run

        found = query_catalog().get(name)
        if found is None:
            raise HTTPException(404, f"no query named {name!r}; GET /api/queries lists them")
        found.bind(body.params)  # unknown name or bad parameters: 400 before the store is opened
        with reader() as db:
            return {"rows": _finite(run(db, name, **body.params))}

    @app.post("/api/subgraphs/{name}/svg", tags=["queries"], response_class=Response,
              responses={200: {"content": {"image/svg+xml": {}}, "description": "The figure."}})
    def render_svg(name: str, body: RenderIn) -> Response:
        """Run a subgraph query (pass-layers, visit-graph, flow-routes) and render it with Graphviz as SVG."""
        from export import render
        from queries.subgraphs import SUBGRAPH_QUERIES, bind_subgraph, run_subgraph

        if name not in SUBGRAPH_QUERIES:
            raise HTTPException(404, f"no subgraph query named {name!r}; these render: {', '.join(SUBGRAPH_QUERIES)}")
        bind_subgraph(name, body.params)
        with reader() as db:
            graph = run_subgraph(db, name, body.params)
        with tempfile.TemporaryDirectory(prefix="lensgraph-svg-") as tmp:
            out = render(graph, Path(tmp) / "figure.svg", "svg", view=body.view, theme=body.theme,
                         title=body.title, timeout_s=body.timeout_s)
            return Response(out.read_bytes(), media_type="image/svg+xml")

    @app.post("/api/cypher", tags=["queries"])
    def cypher(body: CypherIn) -> dict[str, Any]:
        """Read-only ad-hoc Cypher with $parameters, a row limit and a time limit; writes are refused."""
        from queries.adhoc import check_read_only, run_read_only

        check_read_only(body.query)
        with reader() as db:
            result = run_read_only(db, body.query, body.params, limit=body.limit, timeout_s=body.timeout_s)
        return {"rows": _finite(result.rows), "truncated": result.truncated}

    return app


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _subgraph_params(fn: Any) -> list[dict[str, Any]]:
    import inspect
    from typing import get_type_hints

    hints = get_type_hints(fn)
    return [{"name": "pass" if p.name == "pass_uid" else p.name, "type": getattr(hints.get(p.name), "__name__", "str"),
             "required": p.default is inspect.Parameter.empty,
             "default": None if p.default is inspect.Parameter.empty else p.default, "doc": ""}
            for p in inspect.signature(fn).parameters.values() if p.name != "store"]


def _version() -> str:
    import lensgraph

    return lensgraph.__version__
