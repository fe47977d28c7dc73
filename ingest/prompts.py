"""Read prompts from a file: .txt (one a line), .csv (a `prompt` column, optionally `target`), .json (a list)
or .jsonl (one record a line).

A record is a string, or an object with `prompt` and optionally `target`. Two published formats are read
as they are, with target = the attribute (the true answer) and a leading space, as it follows the prompt:
ROME's known facts (`prompt`, `attribute`) and CounterFact (`requested_rewrite`: `prompt` with `{}` for
`subject`, `target_true.str`). Such an attribute often spans several tokens; that row is then refused
with its pieces (PromptSpec.attribute tells the ingest to skip it rather than refuse the whole file).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lensgraph.errors import InputError

FORMATS = (".txt", ".csv", ".json", ".jsonl")


@dataclass(frozen=True)
class PromptSpec:
    prompt: str
    target: str | None = None  # None: the model's own prediction
    where: str = "--prompt"  # for error messages: file and line or index
    attribute: bool = False  # the target is a dataset's attribute (known facts, CounterFact), not the user's


def _record(item: Any, where: str) -> PromptSpec:
    if isinstance(item, str):
        return PromptSpec(item, None, where)
    if isinstance(item, dict):
        rewrite = item.get("requested_rewrite")
        if isinstance(rewrite, dict):  # CounterFact
            return _counterfact(rewrite, where)
        if isinstance(item.get("prompt"), str):
            target = item.get("target")
            if target is not None and not isinstance(target, str):
                raise InputError(f"{where}: `target` must be a string")
            if target is None and isinstance(item.get("attribute"), str):  # ROME known facts
                return PromptSpec(item["prompt"], _answer(item["attribute"], where), where, attribute=True)
            return PromptSpec(item["prompt"], target, where)
    raise InputError(f"{where}: expected a string or an object with a string `prompt` "
                     "(or a CounterFact `requested_rewrite`)")


def _counterfact(rewrite: dict, where: str) -> PromptSpec:
    prompt, subject = rewrite.get("prompt"), rewrite.get("subject")
    true = rewrite.get("target_true")
    answer = true.get("str") if isinstance(true, dict) else None
    if not (isinstance(prompt, str) and isinstance(subject, str) and isinstance(answer, str)):
        raise InputError(f"{where}: a CounterFact record needs requested_rewrite.prompt, .subject and "
                         ".target_true.str as strings")
    if prompt.count("{}") != 1:
        raise InputError(f"{where}: requested_rewrite.prompt must hold one {{}} for the subject")
    return PromptSpec(prompt.replace("{}", subject), _answer(answer, where), where, attribute=True)


def _answer(attribute: str, where: str) -> str:
    if not attribute.strip():
        raise InputError(f"{where}: the attribute is empty")
    return " " + attribute.strip()


def read_prompt_rows(path: str) -> tuple[list[PromptSpec], list[str]]:
    """The good records of a file and one message per bad row (with its line or index). A file that cannot
    be read or parsed at all raises InputError."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read prompts file {path}: {e}") from None
    suffix = file.suffix.lower()
    if suffix == ".txt":
        return [PromptSpec(line, None, f"{path}:{i}") for i, line in enumerate(text.splitlines(), 1) if line.strip()], []
    specs: list[PromptSpec] = []
    problems: list[str] = []

    def add(item: Any, where: str) -> None:
        try:
            specs.append(_record(item, where))
        except InputError as e:
            problems.append(str(e))

    if suffix == ".jsonl":
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{path}:{i}: not valid JSON ({e.msg})")
                continue
            add(item, f"{path}:{i}")
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a JSON list of prompts")
        for i, item in enumerate(data):
            add(item, f"{path}[{i}]")
    elif suffix == ".csv":
        _read_csv(text, path, add, problems)
    else:
        raise InputError(f"{path}: unknown prompts format {suffix!r}; use {', '.join(FORMATS)}")
    return specs, problems


def _read_csv(text: str, path: str, add: Any, problems: list[str]) -> None:
    reader = csv.DictReader(io.StringIO(text, newline=""), restval="")  # a missing target is no target
    if not reader.fieldnames or "prompt" not in reader.fieldnames:
        raise InputError(f"{path}:1: a CSV file needs a header row with a `prompt` column (and optionally `target`)")
    try:
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row:  # DictReader files surplus fields under None
                problems.append(f"{where}: expected {len(reader.fieldnames)} fields, got {len(row) - 1 + len(row[None])}")
                continue
            add({"prompt": row["prompt"], "target": row.get("target") or None}, where)
    except csv.Error as e:
        problems.append(f"{path}:{reader.line_num}: not valid CSV ({e})")


def read_prompts(path: str) -> list[PromptSpec]:
    """Every record of a file, or InputError naming every bad row."""
    specs, problems = read_prompt_rows(path)
    if problems:
        raise InputError("; ".join(problems) if len(problems) == 1 else
                         f"{len(problems)} bad rows in {path}:\n  " + "\n  ".join(problems))
    return specs
