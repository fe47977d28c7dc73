"""The graph schema (documented in docs/SCHEMA.md) and the one helper that builds every uid.

Tables are described here once, backend-neutrally; each store backend renders its own DDL from them.
The first column of a node table is its primary key.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 2  # v2: HAS_STATE (Pass → HiddenState)

# Lists of probabilities are single precision, as the logits they come from: LadybugDB 0.22's checkpoint
# re-analyses a DOUBLE list's values for compression every 64 values it lays out, which made the two
# lists of a HiddenState half the cost of writing a pass (FLOAT lists cost a third as much).
_LENS = {  # the logit-lens annotation every HiddenState and Neuron direction carries
    "norm": "DOUBLE",
    "entropy": "DOUBLE",
    "top_tokens": "STRING[]",
    "top_probs": "FLOAT[]",
    "bottom_tokens": "STRING[]",
    "bottom_probs": "FLOAT[]",
}

NODE_TABLES: dict[str, dict[str, str]] = {
    "Meta": {"key": "STRING", "value": "STRING"},
    "Model": {
        "name": "STRING", "arch": "STRING", "n_layers": "INT64", "n_heads": "INT64",
        "n_kv_heads": "INT64", "d_model": "INT64", "d_head": "INT64", "d_mlp": "INT64",
        "vocab_size": "INT64", "n_ctx": "INT64", "norm": "STRING", "block": "STRING",
        "act": "STRING", "source": "STRING", "revision": "STRING",
    },
    "Token": {"uid": "STRING", "model": "STRING", "id": "INT64", "text": "STRING"},
    "Neuron": {
        "uid": "STRING", "model": "STRING", "layer": "INT64", "kind": "STRING", "idx": "INT64",  # `index` is reserved in LadybugDB
        **_LENS,
        # the same output direction read with a negative activation (the final norm keeps only the sign)
        "neg_entropy": "DOUBLE", "neg_top_tokens": "STRING[]", "neg_top_probs": "FLOAT[]",
        # the input direction (MLP units only; empty lists for attn_o)
        "in_norm": "DOUBLE", "in_top_tokens": "STRING[]", "in_top_probs": "FLOAT[]",
        "in_bottom_tokens": "STRING[]", "in_bottom_probs": "FLOAT[]",
    },
    "Pass": {
        "uid": "STRING", "model": "STRING", "prompt": "STRING", "tokens": "STRING[]",
        "token_ids": "INT64[]", "position": "INT64", "target": "STRING", "target_id": "INT64",
        "target_prob": "DOUBLE", "prediction": "STRING", "prediction_id": "INT64",
        "prediction_prob": "DOUBLE", "settings": "STRING", "complete": "BOOLEAN",
        "created": "STRING", "lensgraph_version": "STRING",
    },
    "HiddenState": {
        "uid": "STRING", "pass": "STRING", "layer": "INT64", "kind": "STRING", "head": "INT64",
        "position": "INT64", "source_token": "STRING", **_LENS,
        "target_rank": "INT64", "target_prob": "DOUBLE", "pred_rank": "INT64", "pred_prob": "DOUBLE",
    },
}


@dataclass(frozen=True)
class RelTable:
    source: str
    target: str
    columns: dict[str, str]


REL_TABLES: dict[str, RelTable] = {
    # a pass's states, so that one pass is read through its adjacency list, not a scan of every pass's states
    "HAS_STATE": RelTable("Pass", "HiddenState", {}),
    "FLOWS_TO": RelTable("HiddenState", "HiddenState", {"kind": "STRING", "score": "DOUBLE", "rank": "INT64"}),
    "ACTIVATES": RelTable("HiddenState", "Neuron", {"coef": "DOUBLE", "pre": "DOUBLE", "rank": "INT64"}),
    "PROMOTES": RelTable("HiddenState", "Token", {"rank": "INT64", "prob": "DOUBLE"}),
}

_ARROW = {"STRING": pa.string(), "INT64": pa.int64(), "DOUBLE": pa.float64(), "FLOAT": pa.float32(),
          "BOOLEAN": pa.bool_()}


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a node table, or of a relationship table (`from`, `to`, then its columns)."""
    if table in REL_TABLES:
        columns = {"from": "STRING", "to": "STRING", **REL_TABLES[table].columns}
    else:
        columns = NODE_TABLES[table]
    return pa.schema([(c, pa.list_(_ARROW[t[:-2]]) if t.endswith("[]") else _ARROW[t])
                      for c, t in columns.items()])


# Node kinds of a pass, in the order of the computation (VISIT appendix A).
LAYER_KINDS = (
    "resid_pre", "ln1", "query", "key", "value", "head", "concat",
    "attn_out", "resid_mid", "ln2", "mlp_out", "resid_post",
)
HEAD_KINDS = ("query", "key", "value", "head")  # one node per query head
SOURCE_KINDS = ("key", "value")  # ... and per source position
FINAL_KIND = "final"
NEURON_KINDS = ("mlp", "attn_o")


def model_key(name: str) -> str:
    """A model name that is safe inside uids: 'org/name' becomes 'org--name' (as in the HF cache)."""
    return name.replace("/", "--")


def pass_uid(model: str, settings_hash: str) -> str:
    return f"{model_key(model)}@{settings_hash[:16]}"


def state_uid(pass_: str, layer: int | None, kind: str, head: int | None = None,
              source: int | None = None) -> str:
    """`<pass>/L<layer>/<kind>[/h<head>][/s<source position>]`; the final node is `<pass>/final`."""
    if kind == FINAL_KIND:
        return f"{pass_}/{FINAL_KIND}"
    uid = f"{pass_}/L{layer}/{kind}"
    if head is not None:
        uid += f"/h{head}"
    if source is not None:
        uid += f"/s{source}"
    return uid


def neuron_uid(model: str, layer: int, kind: str, index: int) -> str:
    return f"{model_key(model)}/L{layer}/{kind}/n{index}"


def token_uid(model: str, token_id: int) -> str:
    return f"{model_key(model)}/t{token_id}"


@dataclass(frozen=True)
class StateRef:
    """A parsed HiddenState uid."""

    pass_uid: str
    layer: int | None
    kind: str
    head: int | None = None
    source: int | None = None


def parse_state_uid(uid: str) -> StateRef:
    """Inverse of state_uid."""
    pass_, _, rest = uid.partition("/")
    if rest == FINAL_KIND:
        return StateRef(pass_, None, FINAL_KIND)
    parts = rest.split("/")
    if len(parts) < 2 or not parts[0].startswith("L"):
        raise ValueError(f"not a HiddenState uid: {uid!r}")
    head = source = None
    for part in parts[2:]:
        if part.startswith("h"):
            head = int(part[1:])
        elif part.startswith("s"):
            source = int(part[1:])
        else:
            raise ValueError(f"not a HiddenState uid: {uid!r}")
    return StateRef(pass_, int(parts[0][1:]), parts[1], head, source)


@dataclass(frozen=True)
class PassCounts:
    nodes: int
    flows: int
    activates: int
    promotes: int


def expected_counts(n_layers: int, n_heads: int, d_head: int, d_mlp: int, n_sources: int,
                    promotes_k: int, parallel: bool = False) -> PassCounts:
    """The schema's formula for one pass; n_sources = analysed position + 1.

    Per layer: 8 single nodes (7 for a parallel block: no resid_mid) and, per head, a query, a head,
    and a key and a value per source position. docs/SCHEMA.md derives the edge counts; tests lock
    ingest to this formula.
    """
    singles = 7 if parallel else 8
    per_head = 2 + 2 * n_sources  # query, head, and a key and a value per source position
    nodes = n_layers * (singles + n_heads * per_head) + 1
    # edges into each node of a layer: see docs/SCHEMA.md, "FLOWS_TO per layer"
    per_layer = 2 * n_heads * n_sources + 3 * n_heads + (7 if parallel else 8)
    flows = n_layers * per_layer + (n_layers - 1) + 1
    activates = n_layers * (d_mlp + n_heads * d_head)
    return PassCounts(nodes, flows, activates, nodes * promotes_k)
