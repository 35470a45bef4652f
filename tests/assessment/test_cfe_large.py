"""The code feature extractor on a 10,000-line program: a guard against quadratic regressions (a
generous bound for a busy CI machine; the figures per size are in bench/cfe_bench.py and README)."""

from __future__ import annotations

import itertools
import time

from lib.assessment import cfe
from lib.assessment.cfe.features import _chunks, extract_features


def _program(n_sprites: int, broken_every: int) -> str:
    top, body = [], []
    for i in range(n_sprites):
        line = f"var s{i} = createSprite({i % 400}, 200);"
        top.append(line if i % broken_every else line.rstrip(";") + " ) ;")  # a syntax error
        top += [f'  s{i}.setAnimation("a");', f"function helper{i}(a) {{", "  return a * 2;", "}"]
        body += ['  if (keyDown("up")) {', f"    s{i}.y = s{i}.y - 3;", "  }"]
    return "\n".join([*top, "function draw() {", *body, "  drawSprites();", "}"]) + "\n"


def test_ten_thousand_lines_with_syntax_errors_stay_fast_and_keep_line_numbers() -> None:
    code = _program(1250, broken_every=25)  # 10,000+ lines, 50 syntax errors
    assert code.count("\n") >= 10_000
    t = time.perf_counter()
    result = cfe.decide(code, "csd3-2023-L18", ["Modularity - Multiple Sprites", "Position and Movement"])
    elapsed = time.perf_counter() - t
    assert elapsed < 15, f"{elapsed:.1f} s for 10k lines: the extractor is no longer linear"
    f = result.features
    broken = [i * 5 + 1 for i in range(0, 1250, 25)]
    assert f.unparsed_lines == broken  # exactly the broken lines, by their own line numbers
    assert f.draw is not None and f.line_text(f.draw[0]) == "function draw() {"
    assert len(result.rows) == 2


def test_pieces_split_only_between_complete_top_level_statements() -> None:
    code = "\n".join(
        ["var a = 1;"] * 70 + ["if (a) {", "  a = 2;", "}", "else {", "  a = 3;", "}"] + ["var b = 2;"] * 70
    )
    pieces = _chunks(code)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(code.split("\n"))
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    starts = {start for start, _ in pieces}
    assert 73 not in starts  # never split between "}" and "else"
    f = extract_features(code)
    assert f.unparsed_lines == []
