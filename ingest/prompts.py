"""Read prompts from a file: .txt (one a line), .json (a list) or .jsonl (one a line).

A record is a string or an object with `prompt` and optionally `target` (ROME's known-facts objects
qualify; their `attribute` is not used as a target, since it often spans several tokens).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lensgraph.errors import InputError


@dataclass(frozen=True)
class PromptSpec:
    prompt: str
    target: str | None = None  # None: the model's own prediction
    where: str = "--prompt"  # for error messages: file and line or index


def _record(item: Any, where: str) -> PromptSpec:
    if isinstance(item, str):
        return PromptSpec(item, None, where)
    if isinstance(item, dict) and isinstance(item.get("prompt"), str):
        target = item.get("target")
        if target is not None and not isinstance(target, str):
            raise InputError(f"{where}: `target` must be a string")
        return PromptSpec(item["prompt"], target, where)
    raise InputError(f"{where}: expected a string or an object with a string `prompt`")


def read_prompts(path: str) -> list[PromptSpec]:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read prompts file {path}: {e}") from None
    suffix = file.suffix.lower()
    if suffix == ".txt":
        return [PromptSpec(line, None, f"{path}:{i}") for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    if suffix == ".jsonl":
        records = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(_record(json.loads(line), f"{path}:{i}"))
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{i}: not valid JSON ({e.msg})") from None
        return records
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a JSON list of prompts")
        return [_record(item, f"{path}[{i}]") for i, item in enumerate(data)]
    raise InputError(f"{path}: unknown prompts format {suffix!r}; use .txt, .json or .jsonl")
