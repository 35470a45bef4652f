"""Compatibility with Code.org's own files and ids: ``-0.0`` kept byte for byte, the bare Bedrock id
``amazon.titan-embed-text-v1`` accepted, Git LFS pointers named as such."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np

from lib.dance.catalog import load_catalog
from lib.dance.jsonfmt import format_json
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

# What a checkout without `git lfs pull` holds instead of Code.org's foreground map (the pointer
# format of https://git-lfs.com/spec/v1: version, oid, size).
LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:b140bfae8bad78a3b3df394190ad46ba045ecee2f412808a1406d20c60f7d4e1\n"
    "size 3928\n"
)


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


def test_a_map_with_negative_zero_regenerates_byte_for_byte(tmp_path: Path, run_cli: RunCli) -> None:
    """Code.org's palettes map with two scores turned into the -0.0 its formula writes for a slightly
    negative similarity: embeddings whose cosines are those scores regenerate the file exactly (the
    old rounding, which turned -0.0 into 0.0, gave a one-line diff here)."""
    catalog = load_catalog(TEST_CATALOG)
    doc = json.loads(REAL_PALETTES.read_text())
    first, second = catalog.emojis[0].id, catalog.emojis[3].id
    doc["emojiAssociations"][first][2] = -0.0
    doc["emojiAssociations"][second][5] = -0.0
    expected = format_json(doc)
    assert expected.count("-0.0") == 2
    scores = np.array([doc["emojiAssociations"][e.id] for e in catalog.emojis])
    # fit with the zeros as -0.0002 (inside the fit's 2e-4 tolerance the cosine stays in [-0.0004, 0])
    targets = scores.copy()
    for emoji, col in ((first, 2), (second, 5)):
        targets[[e.id for e in catalog.emojis].index(emoji), col] = -0.0002
    emoji_vecs, output_vecs = fit_unit_vectors(targets)
    vectors = {e.text: list(map(float, v)) for e, v in zip(catalog.emojis, emoji_vecs, strict=True)}
    vectors |= {
        i.text: list(map(float, v)) for i, v in zip(catalog.outputs["palettes"], output_vecs, strict=True)
    }
    fake = FakeEmbedder(vectors=vectors, dims=emoji_vecs.shape[1])
    code, _, err = run_cli(*_args(tmp_path), gateway=fake_gateway(fake))
    assert code == 0, err
    written = (tmp_path / "out" / "cached_palettes_map.json").read_text()
    assert written == expected
    got = json.loads(written)["emojiAssociations"]
    assert math.copysign(1, got[first][2]) == -1.0 and math.copysign(1, got[second][5]) == -1.0


def test_the_bare_bedrock_id_codeorg_uses_is_accepted(
    tmp_path: Path, run_cli: RunCli, bedrock_env: BedrockMock
) -> None:
    catalog_model = json.loads(Path("lib/dance/data/catalog.json").read_text())["embedding_model"]
    assert catalog_model == "amazon.titan-embed-text-v1"
    code, out, err = run_cli(*_args(tmp_path, model=catalog_model))
    assert code == 0, err
    calls = bedrock_env.calls(INVOKE)
    assert {c.model_id for c in calls} == {"amazon.titan-embed-text-v1"}
    # cached under the routed name: a later run with the full name is all cache hits
    code, out, err = run_cli(*_args(tmp_path))
    assert code == 0, err
    assert "embedded 0," in out and len(bedrock_env.calls(INVOKE)) == len(calls)


def test_only_bare_ids_of_bedrock_embedding_vendors_get_the_prefix(tmp_path: Path, run_cli: RunCli) -> None:
    # a bare id of a chat vendor, or a name that is no Bedrock id, stays an unknown model (exit 2)
    for model in ("anthropic.claude-3-haiku", "nonsense-model", "amazon"):
        code, _, err = run_cli(*_args(tmp_path, model=model), gateway=refusing_gateway())
        assert code == 2 and "unknown_model" in err, (model, err)


def test_lfs_pointer_as_map_says_run_git_lfs_pull(tmp_path: Path, run_cli: RunCli) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for folder in (old, new):
        folder.mkdir()
        for name in ("cached_palettes_map.json", "cached_background_effects_map.json"):
            (folder / name).write_bytes(REAL_PALETTES.read_bytes())
    (old / "cached_foreground_effects_map.json").write_text(LFS_POINTER)
    (new / "cached_foreground_effects_map.json").write_bytes(REAL_PALETTES.read_bytes())
    code, out, err = run_cli("diff", str(old), str(new))
    assert code == 2, out
    assert "cached_foreground_effects_map.json" in err
    assert "this is a Git LFS pointer" in err and "run git lfs pull" in err
    assert "JSON" not in err and "Expecting value" not in err
    code, _, err = run_cli("preview", "rose", "fire", "seedling", "--maps-dir", str(old))
    assert code == 2 and "this is a Git LFS pointer" in err and "run git lfs pull" in err


def test_lfs_pointer_as_pickle_cache_says_run_git_lfs_pull(tmp_path: Path, run_cli: RunCli) -> None:
    pointer = tmp_path / "legacy.pkl"
    pointer.write_text(LFS_POINTER)
    code, _, err = run_cli(
        *_args(tmp_path, "--import-pickle-cache", str(pointer)), gateway=refusing_gateway()
    )
    assert code == 2
    assert f"{pointer}: this is a Git LFS pointer" in err and "run git lfs pull" in err
    assert "cannot be imported safely" not in err and "must hold a dict" not in err
    # a real pickle is still imported (the check does not refuse ordinary files)
    real = tmp_path / "real.pkl"
    real.write_bytes(pickle.dumps({("neon", "amazon.titan-embed-text-v1"): [1.0, 0.0]}))
    code, out, err = run_cli(*_args(tmp_path, "--import-pickle-cache", str(real), "--dry-run"))
    assert code == 0, err
    assert "imported 1 embeddings" in out


def test_lfs_pointer_as_catalog_or_cache_says_run_git_lfs_pull(tmp_path: Path, run_cli: RunCli) -> None:
    pointer = tmp_path / "pointer.json"
    pointer.write_text(LFS_POINTER)
    args = _args(tmp_path)
    args[args.index("--catalog") + 1] = str(pointer)
    code, _, err = run_cli(*args, gateway=refusing_gateway())
    assert code == 2 and "this is a Git LFS pointer" in err
    args = _args(tmp_path)
    args[args.index("--cache") + 1] = str(pointer)
    code, _, err = run_cli(*args, gateway=refusing_gateway())
    assert code == 2 and "this is a Git LFS pointer" in err
