"""Retrieval: index query latency and recall at 100k x 384, ingest rate with ``local``, grounding cost.

    .venv/bin/python bench/retrieval_bench.py [--chunks 100000] [--queries 500] [--ef 320] [--skip-local]

1. Index: ``--chunks`` unit vectors of 384 dimensions (``--data latent``: a 48-dimensional structure
   plus noise, like sentence embeddings; ``--data uniform``: the worst case), stored as chunk rows in
   a SQLite store (a temporary file), loaded by
   ``Retrieval`` into its index (HNSW at this size) the way a worker does on its first query, then
   ``--queries`` queries at k=10 through ``Retrieval.query`` (index search + fetching the chunk rows):
   p50/p99, recall@10 against exact search over the same vectors, index memory, and exact (numpy)
   search times for comparison.  Targets: p50 <= 10 ms, p99 <= 30 ms, recall@10 >= 0.95.
2. Ingest (real MiniLM, ``local``): documents of ~1,000 tokens chunked at 200 tokens, chunks/s.
3. Grounding: what grounded chat adds before the upstream call (embedding the question with ``local``,
   the query, building the context turn) on a collection of the shipped lesson material.  Target
   <= 15 ms p50.
Run it on an idle machine (``uptime`` load < 2): the numbers are CPU-bound.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.providers.base import EmbedRequest, Message
from lib.providers.deadline import Deadline
from lib.retrieval.grounding import grounded_messages
from lib.retrieval.index import ExactIndex, HnswIndex
from lib.retrieval.service import Retrieval
from lib.retrieval.store import CollectionStore
from lib.store import Store
from lib.store.retrieval_schema import retrieval_chunks, retrieval_collections

DIMS = 384


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def synthetic(n: int, rng: np.random.Generator, mixing: np.ndarray | None) -> np.ndarray:
    """Unit vectors: with ``mixing`` (48 x 384) a 48-dimensional latent structure plus noise, as sentence
    embeddings have (their intrinsic dimension is far below 384); without, uniform on the sphere (the
    worst case for any approximate index: every neighbour is almost as far as any other point)."""
    if mixing is None:
        x = rng.standard_normal((n, DIMS)).astype(np.float32)
    else:
        latent = rng.standard_normal((n, mixing.shape[0])).astype(np.float32)
        x = latent @ mixing + 0.5 * rng.standard_normal((n, DIMS)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fill(store: CollectionStore, vectors: np.ndarray) -> None:
    coll, _ = store.create("bench", "local", 200, 40)
    with store.engine.begin() as conn:
        for start in range(0, len(vectors), 5000):
            conn.execute(
                retrieval_chunks.insert(),
                [
                    {
                        "collection_id": coll.id,
                        "doc_id": f"doc{i // 10}",
                        "seq": i % 10,
                        "start": 0,
                        "stop": 10,
                        "content_sha256": f"{i:064x}",
                        "text": f"chunk {i}",
                        "embedding": vectors[i].astype("<f4").tobytes(),
                    }
                    for i in range(start, min(start + 5000, len(vectors)))
                ],
            )
        conn.execute(
            retrieval_collections.update()
            .where(retrieval_collections.c.id == coll.id)
            .values(dimensions=DIMS, generation=1)
        )


def bench_index(args: argparse.Namespace, tmp: Path) -> None:
    rng = np.random.default_rng(0)
    mixing = None if args.data == "uniform" else rng.standard_normal((48, DIMS)).astype(np.float32)
    vectors = synthetic(args.chunks, rng, mixing)
    store = Store(f"sqlite:///{tmp / 'bench.db'}")
    store.migrate()
    retrieval = Retrieval(CollectionStore(store.engine))
    fill(retrieval.store, vectors)
    started = time.perf_counter()
    live = retrieval.wait_built("bench")  # load, then the background HNSW build
    built = time.perf_counter() - started
    assert live.index is not None
    if isinstance(live.index, HnswIndex):
        live.index.expansion_search = args.ef
    keys = np.asarray(sorted(live.doc_of), dtype=np.int64)
    exact = ExactIndex(DIMS)
    exact.add(keys, retrieval.store.chunk_vectors(keys.tolist())[2])
    queries = synthetic(args.queries, rng, mixing)
    took, exact_took, found = [], [], 0
    for q in queries:
        t = time.perf_counter()
        hits = retrieval.query("bench", q, 10)
        took.append(time.perf_counter() - t)
        t = time.perf_counter()
        want = exact.search(q, 10)[0]
        exact_took.append(time.perf_counter() - t)
        got = {int(h.text.split()[1]) for h in hits}
        found += len(got & {int(k) - int(keys[0]) for k in want})
    print(
        f"index: {args.chunks} x {DIMS}, {live.index.kind}, load+build from SQLite {built:.1f} s, "
        f"memory {live.index.memory_bytes / 1e6:.0f} MB (vectors alone {vectors.nbytes / 1e6:.0f} MB)"
    )
    print(
        f"query k=10 (ef={args.ef}): p50 {_pct(took, 0.5):.2f} ms  p99 {_pct(took, 0.99):.2f} ms  "
        f"recall@10 {found / (10 * len(queries)):.3f}"
    )
    print(f"exact numpy search: p50 {_pct(exact_took, 0.5):.2f} ms  p99 {_pct(exact_took, 0.99):.2f} ms")
    store.dispose()


def _local_embedder() -> Callable[[str, list[str]], list[list[float]]]:
    from lib.providers.local import create_local_provider
    from lib.settings import load_settings

    provider = create_local_provider(load_settings(config_file="/nonexistent/config.txt"))
    return lambda model, texts: provider.embed(EmbedRequest(model, texts), Deadline(600)).vectors


def bench_local(tmp: Path) -> None:
    embed = _local_embedder()
    store = Store(f"sqlite:///{tmp / 'local.db'}")
    store.migrate()
    retrieval = Retrieval(CollectionStore(store.engine))
    coll, _ = retrieval.store.create("ingest", "local", 200, 40)
    data = Path(__file__).resolve().parents[1] / "tests" / "data" / "codeorg-aiproxy"
    corpus = [p.read_text(encoding="utf-8") for p in sorted(data.glob("*.csv")) + sorted(data.glob("*.txt"))]
    embed("local", ["warm-up"])
    chunks, started = 0, time.perf_counter()
    for i in range(40):
        text = f"Variant {i}. " + corpus[i % len(corpus)]
        chunks += retrieval.store.upsert(coll, f"doc{i}", text, {"n": i}, embed).embedded
    elapsed = time.perf_counter() - started
    print(f"ingest with local: {chunks} chunks in {elapsed:.1f} s = {chunks / elapsed:.1f} chunks/s")
    question = [Message("user", "Which sprites have properties updated inside the draw loop?")]
    retrieval.query_text("ingest", question[0].content, 4, embed)  # type: ignore[arg-type]
    took = []
    for _ in range(100):
        t = time.perf_counter()
        hits = retrieval.query_text("ingest", question[0].content, 4, embed)  # type: ignore[arg-type]
        grounded_messages(question, hits)
        took.append(time.perf_counter() - t)
    print(
        f"grounding before the upstream call (local question embedding + query + context turn): "
        f"p50 {_pct(took, 0.5):.2f} ms  p99 {_pct(took, 0.99):.2f} ms"
    )
    store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--ef", type=int, default=320, help="HNSW expansion_search (speed vs recall)")
    parser.add_argument("--data", choices=("latent", "uniform"), default="latent", help="vector distribution")
    parser.add_argument("--skip-local", action="store_true", help="no MiniLM ingest / grounding stage")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aiproxy-retrieval-bench-") as tmp:
        bench_index(args, Path(tmp))
        if not args.skip_local:
            bench_local(Path(tmp))


if __name__ == "__main__":
    main()
