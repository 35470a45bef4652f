"""``remove-comments``: drop JavaScript comments with a real tokenizer, keeping every line number.

esprima's tokenizer (``esprima.tokenize(code, {"comment": True, "range": True})``) finds the comments, so
``"http://x"``, template literals and regex literals such as ``/a\\/\\/b/`` survive. When esprima cannot
tokenize the program (an unterminated string, an illegal character), ``lib.assessment.jsscan`` - a
tolerant scanner with the same respect for strings, templates and regexes - finds them instead.

Line numbers never change: a block comment is replaced by the newlines it spanned (or one space when it
sat between two tokens on one line), a line comment by nothing; whitespace left dangling before a removed
comment at a line end is trimmed.
"""

from __future__ import annotations

from lib.assessment.jsscan import scan


def comment_ranges(code: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of every comment in ``code``."""
    import esprima  # about 3 MB: loaded by a worker's first assessment, not at start

    try:
        tokens = esprima.tokenize(code, {"comment": True, "range": True})
    except Exception:  # noqa: BLE001 - esprima raises its own Error (and others) for bad input
        return [(t.start, t.end) for t in scan(code) if t.kind in ("line_comment", "block_comment")]
    return [(t.range[0], t.range[1]) for t in tokens if t.type in ("LineComment", "BlockComment")]


def remove_comments(code: str) -> str:
    ranges = comment_ranges(code)
    if not ranges:
        return code
    out: list[str] = []
    pos = 0
    for start, end in ranges:
        out.append(code[pos:start])
        comment = code[start:end]
        newlines = comment.count("\n")
        at_line_end = end >= len(code) or code[end] in "\r\n"
        if at_line_end or newlines:
            # trim the spaces the comment leaves at the end of the line it started on
            out[-1] = out[-1].rstrip(" \t")
        if newlines:
            out.append("\n" * newlines)
        elif not at_line_end and start > 0 and not code[start - 1].isspace() and not code[end].isspace():
            out.append(" ")
        pos = end
    out.append(code[pos:])
    return "".join(out)
