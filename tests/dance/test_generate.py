"""``generate``: only missing texts go upstream, dry runs and --max-new send nothing, writes are atomic."""

from __future__ import annotations

import json
import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lib import fileio
from lib.dance import weights
from lib.dance.cache import EmbeddingCache
from lib.dance.catalog import OUTPUT_TYPES, load_catalog
from lib.dance.mapfile import load_map
from lib.providers.gateway import Gateway
from lib.settings import Settings
from tests.conftest import make_settings
from tests.dance.conftest import (
    REAL_PALETTES,
    TEST_CATALOG,
    FakeEmbedder,
    RunCli,
    fake_gateway,
    fit_unit_vectors,
    refusing_gateway,
)
from tests.support.bedrock_mock import INVOKE, BedrockMock
from tests.support.openai_mock import EMBEDDINGS, OpenAIMock

N_TEXTS = len(load_catalog(TEST_CATALOG).all_texts())  # 21 + 29 + 17 outputs + 25 emojis, deduplicated
MAP_NAMES = sorted(k.filename for k in OUTPUT_TYPES)


def _args(tmp_path: Path, *extra: str, model: str = "bedrock.amazon.titan-embed-text-v1") -> list[str]:
    return [
        "generate",
        "--catalog", str(TEST_CATALOG),
        "--output-dir", str(tmp_path / "out"),
        "--cache", str(tmp_path / "cache.json"),
        "--model", model,
        "--no-progress",
        *extra,
    ]  # fmt: skip


def _snapshot(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_first_run_embeds_every_text_in_batches_then_the_cache_answers(
    tmp_path: Path, run_cli: RunCli
) -> None:
    fake = FakeEmbedder()
    code, out, _ = run_cli(*_args(tmp_path, "--batch-size", "10"), gateway=fake_gateway(fake))
    assert code == 0, out
    assert len(fake.calls) == math.ceil(N_TEXTS / 10)
    assert max(len(c.texts) for c in fake.calls) == 10
    assert sorted(fake.texts_sent) == sorted(load_catalog(TEST_CATALOG).all_texts())
    assert {c.model for c in fake.calls} == {"amazon.titan-embed-text-v1"}  # provider id, not the route
    assert sorted(os.listdir(tmp_path / "out")) == MAP_NAMES
    assert f"embedded {N_TEXTS}, 0 cache hits" in out
    first = _snapshot(tmp_path / "out")

    again = FakeEmbedder()
    code, out, _ = run_cli(*_args(tmp_path), gateway=fake_gateway(again))
    assert code == 0
    assert again.calls == []
    assert f"embedded 0, {N_TEXTS} cache hits" in out
    assert _snapshot(tmp_path / "out") == first


def test_maps_have_the_front_end_shape(tmp_path: Path, run_cli: RunCli) -> None:
    code, _, _ = run_cli(*_args(tmp_path), gateway=fake_gateway(FakeEmbedder()))
    assert code == 0
    catalog = load_catalog(TEST_CATALOG)
    for kind in OUTPUT_TYPES:
        path = tmp_path / "out" / kind.filename
        doc = json.loads(path.read_text())
        assert list(doc) == ["emojiAssociations", "output", "modelDescriptiveNames"]
        assert doc["output"] == [i.id for i in catalog.outputs[kind.key]]
        assert list(doc["emojiAssociations"]) == [e.id for e in catalog.emojis]
        for row in doc["emojiAssociations"].values():
            assert len(row) == len(doc["output"])
            assert all(-1 <= v <= 1 and round(v, 3) == v for v in row)


def test_only_new_texts_are_sent(tmp_path: Path, run_cli: RunCli) -> None:
    run_cli(*_args(tmp_path), gateway=fake_gateway(FakeEmbedder()))
    doc = json.loads(TEST_CATALOG.read_text())
    doc["emojis"].append("red-heart")
    doc["palettes"][0]["text"] = "autumn leaves falling"
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(doc))
    fake = FakeEmbedder()
    args = _args(tmp_path)
    args[args.index("--catalog") + 1] = str(catalog)
    code, _, _ = run_cli(*args, gateway=fake_gateway(fake))
    assert code == 0
    assert sorted(fake.texts_sent) == ["autumn leaves falling", "red heart"]
    assert (
        "red-heart"
        in json.loads((tmp_path / "out" / "cached_palettes_map.json").read_text())["emojiAssociations"]
    )


def test_a_fake_upstream_reproducing_codeorg_scores_writes_the_real_file(
    tmp_path: Path, run_cli: RunCli
) -> None:
    catalog = load_catalog(TEST_CATALOG)
    real = json.loads(REAL_PALETTES.read_text())
    scores = np.array([real["emojiAssociations"][e.id] for e in catalog.emojis])
    emoji_vecs, output_vecs = fit_unit_vectors(scores)
    vectors = {e.text: list(map(float, v)) for e, v in zip(catalog.emojis, emoji_vecs, strict=True)}
    vectors |= {
        i.text: list(map(float, v)) for i, v in zip(catalog.outputs["palettes"], output_vecs, strict=True)
    }
    fake = FakeEmbedder(vectors=vectors, dims=emoji_vecs.shape[1])
    code, _, _ = run_cli(*_args(tmp_path), gateway=fake_gateway(fake))
    assert code == 0
    assert (tmp_path / "out" / "cached_palettes_map.json").read_bytes() == REAL_PALETTES.read_bytes()


def test_dry_run_sends_and_writes_nothing(tmp_path: Path, run_cli: RunCli) -> None:
    code, out, _ = run_cli(*_args(tmp_path, "--dry-run"), gateway=refusing_gateway())
    assert code == 0
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache.json").exists()
    assert f"{N_TEXTS} would be embedded" in out
    assert "smiling face with hearts" in out and "fall leaves" in out
    assert "Nothing was sent or written" in out
    tokens = int(out.split("total ~")[1].split()[0])
    # Titan v1 at $0.10 per 1M tokens
    assert f"${tokens * 0.10 / 1e6:.6f}" in out


def test_dry_run_after_a_full_run_has_nothing_to_embed(tmp_path: Path, run_cli: RunCli) -> None:
    run_cli(*_args(tmp_path), gateway=fake_gateway(FakeEmbedder()))
    before = _snapshot(tmp_path)
    code, out, _ = run_cli(*_args(tmp_path, "--dry-run"), gateway=refusing_gateway())
    assert code == 0 and "0 would be embedded" in out and "$0.000000" in out
    assert _snapshot(tmp_path) == before


def test_max_new_refuses_and_sends_nothing(tmp_path: Path, run_cli: RunCli) -> None:
    code, _, err = run_cli(*_args(tmp_path, "--max-new", str(N_TEXTS - 1)), gateway=refusing_gateway())
    assert code == weights.EXIT_REFUSED == 3
    assert f"{N_TEXTS} texts are not in the embedding cache" in err and "nothing was sent or written" in err
    assert _snapshot(tmp_path) == {}
    fake = FakeEmbedder()
    code, _, _ = run_cli(*_args(tmp_path, "--max-new", str(N_TEXTS)), gateway=fake_gateway(fake))
    assert code == 0 and len(fake.texts_sent) == N_TEXTS
    # everything is cached now: --max-new 0 is satisfied and nothing is sent
    code, _, _ = run_cli(*_args(tmp_path, "--max-new", "0"), gateway=refusing_gateway())
    assert code == 0


def test_upstream_failure_keeps_paid_for_embeddings_and_writes_no_maps(
    tmp_path: Path, run_cli: RunCli
) -> None:
    fake = FakeEmbedder(fail_on_call=3)
    code, _, err = run_cli(*_args(tmp_path, "--batch-size", "10"), gateway=fake_gateway(fake))
    assert code == 2 and "upstream_unavailable" in err
    assert not (tmp_path / "out").exists()
    cache = EmbeddingCache.load(tmp_path / "cache.json")
    assert len(cache) == 20  # the two batches that succeeded
    resumed = FakeEmbedder()
    code, _, _ = run_cli(*_args(tmp_path, "--batch-size", "10"), gateway=fake_gateway(resumed))
    assert code == 0 and len(resumed.texts_sent) == N_TEXTS - 20


def _fill_old_maps(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True)
    for name in MAP_NAMES:
        (folder / name).write_text('{"old": true}\n')
    return _snapshot(folder)


def test_crash_in_os_replace_leaves_the_old_maps_intact(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _fill_old_maps(tmp_path / "out")
    real_replace = os.replace

    def crash_on_maps(src: str, dst: str) -> None:
        if str(dst).endswith("_map.json"):
            raise OSError("crash mid-write (simulated)")
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", crash_on_maps)
    code, _, err = run_cli(*_args(tmp_path), gateway=fake_gateway(FakeEmbedder()))
    assert code == 2 and "simulated" in err
    assert _snapshot(tmp_path / "out") == old  # no temp files left either
    assert len(EmbeddingCache.load(tmp_path / "cache.json")) == N_TEXTS  # the cache write went through


def test_crash_in_serialisation_writes_no_map(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _fill_old_maps(tmp_path / "out")
    calls = {"n": 0}
    real_format = weights.format_map

    def format_then_crash(m: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 3:  # the last of the three maps
            raise ValueError("serialiser crashed (simulated)")
        return real_format(m)

    monkeypatch.setattr(weights, "format_map", format_then_crash)
    with pytest.raises(ValueError, match="simulated"):
        run_cli(*_args(tmp_path), gateway=fake_gateway(FakeEmbedder()))
    assert _snapshot(tmp_path / "out") == old


def test_legacy_pickle_import_feeds_the_cache(tmp_path: Path, run_cli: RunCli) -> None:
    catalog = load_catalog(TEST_CATALOG)
    texts = catalog.all_texts()
    legacy = {(t, "amazon.titan-embed-text-v1"): [float(i + 1), 1.0, 0.5] for i, t in enumerate(texts[:30])}
    legacy[("something else", "text-embedding-3-small")] = [1.0, 0.0, 0.0]
    path = tmp_path / "legacy.pkl"
    path.write_bytes(pickle.dumps(legacy))
    fake = FakeEmbedder(dims=3)
    code, out, _ = run_cli(*_args(tmp_path, "--import-pickle-cache", str(path)), gateway=fake_gateway(fake))
    assert code == 0, out
    assert "imported 31 embeddings" in out
    assert sorted(fake.texts_sent) == sorted(texts[30:])  # the 30 Titan texts came from the pickle
    cache = EmbeddingCache.load(tmp_path / "cache.json")
    assert cache.get(texts[0], "bedrock.amazon.titan-embed-text-v1") == [1.0, 1.0, 0.5]
    assert cache.get("something else", "text-embedding-3-small") == [1.0, 0.0, 0.0]
    # importing again is a no-op
    code, out, _ = run_cli(*_args(tmp_path, "--import-pickle-cache", str(path)), gateway=refusing_gateway())
    assert code == 0 and "already imported" in out


def test_dimensions_are_passed_and_cached_separately(tmp_path: Path, run_cli: RunCli) -> None:
    fake = FakeEmbedder()
    model = "bedrock.amazon.titan-embed-text-v2:0"
    code, _, _ = run_cli(*_args(tmp_path, "--dimensions", "256", model=model), gateway=fake_gateway(fake))
    assert code == 0 and {c.dimensions for c in fake.calls} == {256}
    cache = EmbeddingCache.load(tmp_path / "cache.json")
    assert cache.models() == ["bedrock.amazon.titan-embed-text-v2:0@256d"]
    assert len(cache.get("neon", "bedrock.amazon.titan-embed-text-v2:0@256d") or []) == 256
    # without --dimensions the same model is a different cache entry: everything goes again
    other = FakeEmbedder()
    run_cli(*_args(tmp_path, model=model), gateway=fake_gateway(other))
    assert len(other.texts_sent) == N_TEXTS


def test_unknown_model_and_bad_catalog_are_errors(tmp_path: Path, run_cli: RunCli) -> None:
    code, _, err = run_cli(*_args(tmp_path, model="nonsense-model"), gateway=refusing_gateway())
    assert code == 2 and "unknown_model" in err
    args = _args(tmp_path)
    args[args.index("--catalog") + 1] = str(tmp_path / "missing.json")
    code, _, err = run_cli(*args, gateway=refusing_gateway())
    assert code == 2 and "file not found" in err


# --- the real path: openai SDK -> loopback /v1/embeddings ----------------------------------------


def test_openai_through_the_real_sdk_counts_upstream_calls(
    tmp_path: Path, run_cli: RunCli, openai_mock: OpenAIMock, settings: Settings
) -> None:
    gateway = Gateway(settings)
    args = _args(tmp_path, "--batch-size", "50", model="text-embedding-3-small")
    code, out, _ = run_cli(*args, gateway=gateway)
    assert code == 0, out
    calls = openai_mock.calls(EMBEDDINGS)
    assert len(calls) == math.ceil(N_TEXTS / 50)
    assert sum(len(c.json["input"]) for c in calls) == N_TEXTS
    assert {c.json["model"] for c in calls} == {"text-embedding-3-small"}
    reported = sum(len(str(t).split()) for c in calls for t in c.json["input"])  # the mock's usage rule
    assert f"{reported} tokens (provider-reported" in out
    first = _snapshot(tmp_path / "out")

    code, out, _ = run_cli(*args, gateway=Gateway(settings))
    assert code == 0
    assert len(openai_mock.calls(EMBEDDINGS)) == len(calls)  # cache hits: no new upstream call
    assert f"{N_TEXTS} cache hits" in out
    assert _snapshot(tmp_path / "out") == first


def test_cli_builds_its_gateway_from_the_environment(
    tmp_path: Path, run_cli: RunCli, openai_mock: OpenAIMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIPROXY_CONFIG_FILE", str(tmp_path / "no-config.txt"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-env")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_mock.base_url)
    code, out, _ = run_cli(*_args(tmp_path, model="text-embedding-3-small"))
    assert code == 0, out
    calls = openai_mock.calls(EMBEDDINGS)
    assert len(calls) == math.ceil(N_TEXTS / weights.DEFAULT_BATCH_SIZE)
    headers = {k.lower(): v for k, v in calls[0].headers.items()}
    assert headers["authorization"] == "Bearer sk-test-env"
    m = load_map(tmp_path / "out" / "cached_background_effects_map.json")
    assert len(m.output) == 29


def test_settings_errors_exit_2(tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIPROXY_CONFIG_FILE", str(tmp_path / "no-config.txt"))
    monkeypatch.setenv("MAX_RETRIES", "not-a-number")
    code, _, err = run_cli(*_args(tmp_path))
    assert code == 2 and "MAX_RETRIES" in err


def test_make_settings_is_offline() -> None:
    assert not make_settings().has_openai


# --- the real path: boto3 -> loopback bedrock-runtime (Titan v1, the default model) ---------------


def test_default_titan_v1_through_boto3_one_call_per_text_then_cache(
    tmp_path: Path, run_cli: RunCli, bedrock_env: BedrockMock
) -> None:
    args = [
        "generate",
        "--catalog",
        str(TEST_CATALOG),
        "--output-dir",
        str(tmp_path / "out"),
        "--cache",
        str(tmp_path / "cache.json"),
        "--no-progress",
    ]  # fmt: skip  (no --model: the default is Titan v1)
    code, out, err = run_cli(*args)
    assert code == 0, err
    calls = bedrock_env.calls(INVOKE)
    assert len(calls) == N_TEXTS  # Titan embeds one text per call
    assert {c.model_id for c in calls} == {"amazon.titan-embed-text-v1"}
    assert sorted(c.json["inputText"] for c in calls) == sorted(load_catalog(TEST_CATALOG).all_texts())
    assert "bedrock.amazon.titan-embed-text-v1" in out and "provider-reported" in out
    cache = EmbeddingCache.load(tmp_path / "cache.json")
    assert len(cache.get("neon", "bedrock.amazon.titan-embed-text-v1") or []) == 1536
    code, out, _ = run_cli(*args)
    assert code == 0 and len(bedrock_env.calls(INVOKE)) == N_TEXTS
    assert f"{N_TEXTS} cache hits" in out


def test_titan_v2_dimensions_reach_the_wire(
    tmp_path: Path, run_cli: RunCli, bedrock_env: BedrockMock
) -> None:
    code, _, err = run_cli(
        *_args(tmp_path, "--dimensions", "256", model="bedrock.amazon.titan-embed-text-v2:0")
    )
    assert code == 0, err
    calls = bedrock_env.calls(INVOKE)
    assert len(calls) == N_TEXTS and {c.json.get("dimensions") for c in calls} == {256}
    assert {c.model_id for c in calls} == {"amazon.titan-embed-text-v2:0"}


def test_progress_bar_goes_to_stderr_on_a_terminal(tmp_path: Path) -> None:
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, err = io.StringIO(), Terminal()
    args = [a for a in _args(tmp_path) if a != "--no-progress"]
    assert weights.main(args, gateway=fake_gateway(FakeEmbedder()), stdout=out, stderr=err) == 0
    assert "embedding with bedrock.amazon.titan-embed-text-v1" in err.getvalue()
    assert f"{N_TEXTS}/{N_TEXTS}" in err.getvalue()
    assert "embedding with" not in out.getvalue()  # stdout keeps only the summary


def test_a_configured_fallback_is_refused_before_anything_is_sent(tmp_path: Path, run_cli: RunCli) -> None:
    settings = make_settings(model_fallbacks="bedrock.amazon.titan-embed-text-v1=local")
    code, _, err = run_cli(*_args(tmp_path), gateway=refusing_gateway(settings))
    assert code == 2 and "MODEL_FALLBACKS" in err
    assert _snapshot(tmp_path) == {}


def test_a_cache_mixing_vector_sizes_is_an_error_not_a_map(tmp_path: Path, run_cli: RunCli) -> None:
    cache = EmbeddingCache(tmp_path / "cache.json")
    cache.put("neon", "bedrock.amazon.titan-embed-text-v1", [1.0, 0.0, 0.0])  # the fake answers 16 dims
    cache.save()
    code, _, err = run_cli(*_args(tmp_path), gateway=fake_gateway(FakeEmbedder()))
    assert code == 2 and "different sizes [3, 16]" in err
    assert not (tmp_path / "out").exists()
