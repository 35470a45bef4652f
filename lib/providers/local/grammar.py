"""JSON schema -> llama.cpp GBNF, for structured output and tool calls alike.

llama.cpp's converter (``llama_cpp.llama_grammar.json_schema_to_gbnf``) does the work; this module
maps its failures to a 400 naming the field, and tightens its JSON string rule: the converter admits
any character but ``"`` and ``\\`` inside a string, raw control characters (a newline, a tab) included,
which ``json.loads`` refuses. Here a string character is anything but ``"``, ``\\`` and U+0000-U+001F,
so whatever the grammar admits parses as JSON.
"""

from __future__ import annotations

import json
from typing import Any

from lib.errors import InvalidRequestError

#: The converter's string-character rule, and the same rule without raw control characters.
_LOOSE_CHAR = 'char ::= [^"\\\\] | '
_STRICT_CHAR = 'char ::= [^"\\\\\\x00-\\x1F] | '


def json_gbnf(schema: dict[str, Any], *, field: str, what: str) -> str:
    """GBNF whose ``root`` rule admits exactly the JSON values valid for ``schema`` (as far as the
    converter supports JSON schema); an unsupported schema is a 400 naming ``field``."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        gbnf = json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # noqa: BLE001 - the converter raises bare Exceptions for unsupported keywords
        raise InvalidRequestError(f"{what} cannot be turned into a grammar: {exc}", field=field) from None
    return gbnf.replace(_LOOSE_CHAR, _STRICT_CHAR)
