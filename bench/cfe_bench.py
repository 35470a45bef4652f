"""Code feature extractor time per program size: shows that it grows linearly with the program.

Generated Game Lab programs (sprites, helper functions, a draw() loop with conditionals and key input)
of 1k/2k/5k/10k lines, clean and with one syntax error per 100 lines (each error used to cost a parse of
the whole program), through ``cfe.decide`` with every csd3-2023-L18 tree. Prints seconds and us/line.

    .venv/bin/python bench/cfe_bench.py [--sizes 1000,2000,5000,10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.assessment import cfe

KEY_CONCEPTS = [
    "Position and Movement",
    "Modularity - Multiple Sprites",
    "Algorithms and Control - User Input",
    "Algorithms and Control - Conditionals",
]


def program(lines: int, errors_per_100: int = 0) -> str:
    """A Game Lab program of about ``lines`` lines; optional syntax errors spread through draw()."""
    top = ["var score = 0;", "var speed = 2;"]
    body: list[str] = []
    i = 0
    while len(top) + len(body) < lines - 8:
        s = f"s{i}"
        top += [f"var {s} = createSprite({i % 400}, {(i * 7) % 400});", f'{s}.setAnimation("a{i % 5}");']
        top += [f"function helper{i}(a) {{", "  return a * 2 + randomNumber(1, 5);", "}"]
        body += [f"  {s}.x = {s}.x + speed;", f'  if (keyDown("up") && {s}.y > 10) {{']
        body += [f"    {s}.y = {s}.y - 3;", "    score = score + 1;", "  }"]
        i += 1
    if errors_per_100:
        step = max(1, 100 // errors_per_100)
        for k in range(0, len(top), step):
            if top[k].startswith("var "):
                top[k] = top[k].rstrip(";") + " ) ;"
    draw = [
        "function draw() {",
        '  background("white");',
        *body,
        "  drawSprites();",
        "  text(score, 10, 20);",
    ]
    return "\n".join([*top, *draw, "}"]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,2000,5000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'lines':>6} {'errors':>6} {'median s':>9} {'us/line':>8} {'unparsed':>8}")
    for size in (int(x) for x in args.sizes.split(",")):
        for errors in (0, 1):
            code = program(size, errors)
            n = code.count("\n")
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                result = cfe.decide(code, "csd3-2023-L18", KEY_CONCEPTS)
                times.append(time.perf_counter() - t)
            med = statistics.median(times)
            unparsed = len(result.features.unparsed_lines)
            print(
                f"{n:>6} {errors * n // 100:>6} {med:>9.2f} {med / n * 1e6:>8.0f} {unparsed:>8}", flush=True
            )


if __name__ == "__main__":
    main()
