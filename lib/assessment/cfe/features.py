"""The code feature extractor: what a Game Lab (p5play) student program contains, with line numbers.

esprima parses the program (``tolerant``, with locations). Student programs often do not parse, so:

1. "Unexpected end of input" (a missing ``}``): up to three ``}`` are appended and the parse retried.
2. Any other error at line L: line L is blanked (line numbers stay the same), the parse is retried (at
   most 40 times), and line L is read by the tolerant token scanner (``lib.assessment.jsscan``), which
   still records the sprites, shapes, text, property updates, calls and conditionals on it.
   ``Features.unparsed_lines`` lists such lines and every decision tree mentions them in its
   observations, so no feature is ever dropped silently.

Ordinary student code is handled: ``var score;`` (no initialiser), calls with extra or missing
arguments, ``var f = function () {}``, nested conditionals, member expressions like ``World.mouseX``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import esprima
import esprima.objects

from lib.assessment.jsscan import Token, scan

#: Shape-making functions. The Code.org prompts: "Shapes are only created using rect(), ellipse(),
#: circle(), quad(), or triangle(). The line function will not create a shape." (arc, regularPolygon
#: and shape are Game Lab's other filled shapes and count too.)
SHAPE_FUNCTIONS = frozenset(
    {"rect", "ellipse", "circle", "quad", "triangle", "arc", "regularPolygon", "shape"}
)
TEXT_FUNCTIONS = frozenset({"text"})
SPRITE_FUNCTIONS = frozenset({"createSprite"})
INPUT_FUNCTIONS = frozenset(
    {
        "keyDown", "keyWentDown", "keyWentUp", "keyUp", "mouseDown", "mouseWentDown", "mouseWentUp",
        "mouseUp", "mouseIsOver", "mousePressedOver", "mouseDidMove", "mouseClicked", "keyIsPressed",
    }
)  # fmt: skip
INPUT_NAMES = frozenset({"mouseX", "mouseY", "mouseIsPressed", "keyIsPressed", "pmouseX", "pmouseY"})
INTERACTION_METHODS = frozenset({"isTouching", "collide", "displace", "bounce", "bounceOff", "overlap"})
VELOCITY_PROPS = frozenset({"velocityX", "velocityY"})
VELOCITY_METHODS = frozenset(
    {"setVelocity", "setSpeed", "setSpeedAndDirection", "addSpeed", "attractionPoint"}
)
POSITION_PROPS = frozenset({"x", "y", "rotation"})
#: sprite methods that change the sprite (queries such as isTouching are not property changes)
SPRITE_CHANGE_METHODS = frozenset(
    {
        "setAnimation", "setVelocity", "setSpeed", "setSpeedAndDirection", "addSpeed", "setCollider",
        "mirrorX", "mirrorY", "pointTo", "rotateToDirection", "attractionPoint", "destroy", "scale",
        "addAnimation", "changeAnimation", "setTint",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Element:
    kind: str  # "sprite" | "shape" | "text"
    call: str
    name: str | None  # the variable holding it (sprites)
    line: int
    end_line: int
    in_draw: bool
    arg_names: frozenset[str]  # identifiers in the position arguments
    random_args: bool  # randomNumber() in its position arguments
    recovered: bool = False
    all_arg_names: frozenset[str] = frozenset()  # identifiers in any argument (size, colour, ...)


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    line: int
    init: str  # sprite | group | number | string | bool | random | call | expression | none
    in_draw: bool


@dataclass(frozen=True, slots=True)
class Update:
    target: str  # "score" or "player.x"
    obj: str | None
    prop: str | None
    line: int
    end_line: int
    in_draw: bool
    counter: bool  # x = x + k, x += k, x++ (and -)
    random: bool  # the new value uses randomNumber()
    value_names: frozenset[str]  # identifiers the new value is computed from
    recovered: bool = False


@dataclass(frozen=True, slots=True)
class MethodCall:
    obj: str
    method: str
    line: int
    end_line: int
    in_draw: bool


@dataclass(frozen=True, slots=True)
class Conditional:
    line: int
    end_line: int
    in_draw: bool
    triggers: frozenset[str]  # input | interaction | variable | property
    inputs: tuple[str, ...]  # e.g. 'keyDown("space")'
    has_body: bool
    recovered: bool = False


@dataclass(frozen=True, slots=True)
class UserFunction:
    name: str
    line: int
    end_line: int
    call_lines: tuple[int, ...]
    called_from_draw: bool


@dataclass
class Features:
    lines: list[str]
    elements: list[Element] = field(default_factory=list)
    variables: list[Variable] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    method_calls: list[MethodCall] = field(default_factory=list)
    conditionals: list[Conditional] = field(default_factory=list)
    functions: list[UserFunction] = field(default_factory=list)
    calls: list[tuple[str, int, bool]] = field(default_factory=list)  # (name, line, in_draw)
    draw: tuple[int, int] | None = None  # lines of function draw()
    uses: dict[str, list[int]] = field(default_factory=dict)  # identifier -> lines it is used on
    unparsed_lines: list[int] = field(default_factory=list)

    # --- derived views the trees use ---------------------------------------------------------
    def of_kind(self, kind: str) -> list[Element]:
        return [e for e in self.elements if e.kind == kind]

    @property
    def sprite_names(self) -> set[str]:
        return {e.name for e in self.elements if e.kind == "sprite" and e.name}

    @property
    def function_names(self) -> set[str]:
        return {f.name for f in self.functions} | {"draw"}

    def line_text(self, line: int) -> str:
        return self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""


# --- parsing with recovery -----------------------------------------------------------------------


#: a chunk is closed at the first safe split point after this many lines
_CHUNK_LINES = 60
#: a line starting with one of these continues the statement before it: never split before it
_CONTINUES = frozenset({"else", "catch", "finally", "while", "in", "instanceof", "of"})
_OPEN = {")": "(", "]": "["}
#: parsing may read the program this many times in all (error recovery re-reads a piece)
_PARSE_BUDGET_FACTOR = 4
#: ... plus this many characters, so ordinary programs (a few hundred lines) get every retry they need
_PARSE_BUDGET_FLOOR = 400_000


def _chunks(code: str) -> list[tuple[int, int]]:
    """Line ranges ``[start, end)`` (0-based) of top-level pieces that parse on their own.

    esprima is pure Python and recovering from a syntax error means parsing again, so one parse of the
    whole program per error made large programs quadratic (errors x length). Split points, found with
    the tolerant scanner in one pass: bracket depth 0 at the end of a line that ends with ``;`` or ``}``,
    the next code line starting with an identifier or keyword that cannot continue a statement.
    """
    lines = code.split("\n")
    try:
        toks = [t for t in scan(code) if t.kind not in ("line_comment", "block_comment")]
    except Exception:  # noqa: BLE001 - the scanner is tolerant; never let chunking break extraction
        return [(0, len(lines))]
    depth_after: dict[int, int] = {}  # line -> bracket depth after its last token
    last_tok: dict[int, str] = {}
    first_tok: dict[int, tuple[str, str]] = {}
    # Brackets matched by kind, so a stray ")" (the usual syntax error) cannot fake depth 0 inside a
    # block; a "}" also closes the parentheses left open inside its block.
    stack: list[str] = []
    for t in toks:
        if t.kind == "punct" and t.value in ("(", "[", "{"):
            stack.append(t.value)
        elif t.kind == "punct" and t.value in (")", "]"):
            if stack and stack[-1] == _OPEN[t.value]:
                stack.pop()
        elif t.kind == "punct" and t.value == "}" and "{" in stack:
            while stack.pop() != "{":
                pass
        first_tok.setdefault(t.line, (t.kind, t.value))
        last_tok[t.line] = t.value if t.kind == "punct" else ""
        depth_after[t.line] = len(stack)
    code_lines = sorted(first_tok)
    out: list[tuple[int, int]] = []
    start = 0
    for i, line in enumerate(code_lines[:-1]):
        nxt = code_lines[i + 1]
        if line - start < _CHUNK_LINES or depth_after[line] != 0 or last_tok[line] not in (";", "}"):
            continue
        kind, value = first_tok[nxt]
        if kind != "ident" or value in _CONTINUES:
            continue
        out.append((start, line))  # token lines are 1-based: lines [start, line) 0-based = 1..line
        start = line
    out.append((start, len(lines)))
    return out


def _shift(node: Any, lines: int, chars: int) -> None:
    """Move every node's ``loc`` lines and ``range`` offsets of a piece to its place in the program."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            loc = cur.get("loc")
            if isinstance(loc, dict) and "start" in loc:
                loc["start"]["line"] += lines
                loc["end"]["line"] += lines
            rng = cur.get("range")
            if isinstance(rng, list) and len(rng) == 2:
                cur["range"] = [rng[0] + chars, rng[1] + chars]
            stack.extend(
                v for k, v in cur.items() if k not in ("loc", "range") and isinstance(v, dict | list)
            )
        elif isinstance(cur, list):
            stack.extend(cur)


def _parse(code: str) -> tuple[dict[str, Any] | None, list[int], str]:
    """(AST dict or None, blanked line numbers, the code that parsed), read piece by piece (``_chunks``):
    a syntax error costs a parse of its piece, not of the whole program, so the work stays linear."""
    lines = code.split("\n")
    pieces = _chunks(code)
    # Re-parsing after errors inside one large piece (a 5,000-line draw()) is still errors x piece size:
    # all parsing together may read at most this many characters; a piece beyond it is read line by
    # line by the tolerant scanner instead (its lines are reported unparsed, none is dropped).
    budget = [_PARSE_BUDGET_FACTOR * len(code) + _PARSE_BUDGET_FLOOR]
    if len(pieces) == 1:
        return _parse_piece(code, budget)
    body: list[Any] = []
    blanked: list[int] = []
    texts: list[str] = []
    offset = 0
    parsed_any = False
    for start, end in pieces:
        tree, piece_blanked, text = _parse_piece("\n".join(lines[start:end]), budget)
        blanked += [n + start for n in piece_blanked]
        if tree is not None:
            parsed_any = True
            _shift(tree, start, offset)
            body += tree.get("body") or []
        texts.append(text)
        offset += len(text) + 1
    if not parsed_any:
        return None, sorted(set(blanked)), code
    program = {"type": "Program", "body": body, "sourceType": "script"}
    return program, sorted(set(blanked)), "\n".join(texts)


def _parse_piece(code: str, budget: list[int]) -> tuple[dict[str, Any] | None, list[int], str]:
    """(AST dict or None, blanked line numbers, the code that parsed)."""
    lines = code.split("\n")
    blanked: list[int] = []
    closers = 0
    for _ in range(40):
        text = "\n".join(lines) + ("\n" + "}" * closers if closers else "")
        if len(text) > budget[0]:
            break
        budget[0] -= len(text)
        try:
            tree = esprima.parseScript(text, {"loc": True, "range": True, "tolerant": True})
            return _to_dict(tree), sorted(blanked), text
        except Exception as exc:  # noqa: BLE001 - esprima raises its own Error type (and others on bad input)
            message = str(getattr(exc, "message", exc))
            line = getattr(exc, "lineNumber", None)
            if "end of input" in message and closers < 3:
                closers += 1
                continue
            if not isinstance(line, int) or not 0 < line <= len(lines) or not lines[line - 1].strip():
                # error on a line we cannot blank (or the appended closers): blank the last non-empty line
                candidates = [i + 1 for i, ln in enumerate(lines) if ln.strip()]
                if not candidates:
                    break
                line = candidates[-1]
            line = _culprit(lines, line)
            lines[line - 1] = ""
            blanked.append(line)
    return None, sorted(set(blanked) | {i + 1 for i, ln in enumerate(code.split("\n")) if ln.strip()}), code


def _to_dict(value: Any) -> Any:
    """esprima nodes -> plain dicts (several times faster than esprima's own visitor-based toDict)."""
    if isinstance(value, list):
        return [_to_dict(v) for v in value]
    if isinstance(value, esprima.objects.Object):
        return {k: _to_dict(v) for k, v in vars(value).items()}
    return value


def _culprit(lines: list[str], line: int) -> int:
    """The error is often reported on the line after an unclosed ``(`` or ``[``: blank that one instead."""
    prev = line - 1
    while prev > 0 and not lines[prev - 1].strip():
        prev -= 1
    if prev > 0:
        toks = [t.value for t in scan(lines[prev - 1]) if t.kind == "punct"]
        if toks.count("(") > toks.count(")") or toks.count("[") > toks.count("]"):
            return prev
    return line


def _walk_dicts(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            if "type" in cur:
                yield cur
            stack.extend(
                v for k, v in cur.items() if k not in ("loc", "range") and isinstance(v, dict | list)
            )
        elif isinstance(cur, list):
            stack.extend(cur)


def _line(node: dict[str, Any]) -> int:
    return int(node.get("loc", {}).get("start", {}).get("line", 0))


def _end_line(node: dict[str, Any]) -> int:
    return int(node.get("loc", {}).get("end", {}).get("line", _line(node)))


def _callee_name(call: dict[str, Any]) -> str | None:
    callee = call.get("callee") or {}
    if callee.get("type") == "Identifier":
        return str(callee.get("name"))
    return None


def _member_parts(node: dict[str, Any]) -> tuple[str | None, str | None]:
    """``a.b`` -> ("a", "b"); ``a.b.c`` -> ("a.b", "c"); ``a["x"]`` -> ("a", "x")."""
    if node.get("type") != "MemberExpression":
        return None, None
    prop_node = node.get("property") or {}
    if node.get("computed"):
        prop = prop_node.get("value") if prop_node.get("type") == "Literal" else None
        prop = str(prop) if isinstance(prop, str) else None
    else:
        prop = prop_node.get("name")
    obj_node = node.get("object") or {}
    if obj_node.get("type") == "Identifier":
        obj: str | None = obj_node.get("name")
    elif obj_node.get("type") == "ThisExpression":
        obj = "this"
    elif obj_node.get("type") == "MemberExpression":
        o, p = _member_parts(obj_node)
        obj = f"{o}.{p}" if o and p else None
    else:
        obj = None
    return obj, prop


def _uses_random(node: Any) -> bool:
    return any(
        n.get("type") == "CallExpression" and _callee_name(n) == "randomNumber" for n in _walk_dicts(node)
    )


def _names(node: Any) -> frozenset[str]:
    out: set[str] = set()
    for n in _walk_dicts(node):
        if n.get("type") == "Identifier":
            out.add(str(n.get("name")))
        elif n.get("type") == "MemberExpression":
            obj, prop = _member_parts(n)
            if obj and prop:
                out.add(f"{obj}.{prop}")
    return frozenset(out)


class _Extractor:
    def __init__(self, code: str, tree: dict[str, Any], features: Features) -> None:
        self.code = code
        self.tree = tree
        self.f = features
        self.fn_defs: dict[str, dict[str, Any]] = {}
        self.reachable_from_draw: set[str] = set()
        self.declared: set[str] = set()

    def src(self, node: dict[str, Any]) -> str:
        rng = node.get("range")
        return re.sub(r"\s+", "", self.code[rng[0] : rng[1]]) if rng else ""

    # pass 1: user functions and which of them draw() reaches; declared names; identifier uses
    def index_functions(self) -> None:
        declarator_ids: list[str] = []
        for node in _walk_dicts(self.tree):
            if node.get("type") == "Identifier":
                self.f.uses.setdefault(str(node.get("name")), []).append(_line(node))
            elif node.get("type") == "VariableDeclarator" and isinstance(node.get("id"), dict):
                declarator_ids.append(str(node["id"].get("name")))
            if node.get("type") == "FunctionDeclaration" and (node.get("id") or {}).get("name"):
                self.fn_defs.setdefault(node["id"]["name"], node)
            elif node.get("type") == "VariableDeclarator" and (node.get("init") or {}).get("type") in (
                "FunctionExpression",
                "ArrowFunctionExpression",
            ):
                name = (node.get("id") or {}).get("name")
                if name:
                    self.fn_defs.setdefault(name, node["init"])
        self.declared = set(declarator_ids)
        for name in declarator_ids:  # a declaration is not a use
            if self.f.uses.get(name):
                self.f.uses[name].pop(0)
        calls: dict[str, set[str]] = {}
        for name, fn in self.fn_defs.items():
            calls[name] = {
                c
                for n in _walk_dicts(fn.get("body"))
                if n.get("type") == "CallExpression" and (c := _callee_name(n)) in self.fn_defs
            }
        todo = ["draw"] if "draw" in self.fn_defs else []
        while todo:
            cur = todo.pop()
            for callee in calls.get(cur, ()):
                if callee not in self.reachable_from_draw and callee != "draw":
                    self.reachable_from_draw.add(callee)
                    todo.append(callee)
        if "draw" in self.fn_defs:
            d = self.fn_defs["draw"]
            self.f.draw = (_line(d), _end_line(d))
        call_lines: dict[str, list[int]] = {name: [] for name in self.fn_defs}
        for n in _walk_dicts(self.tree):
            if n.get("type") == "CallExpression" and (c := _callee_name(n)) in call_lines:
                call_lines[c].append(_line(n))
        for name, fn in self.fn_defs.items():
            if name == "draw":
                continue
            self.f.functions.append(
                UserFunction(
                    name,
                    _line(fn),
                    _end_line(fn),
                    tuple(sorted(call_lines[name])),
                    name in self.reachable_from_draw,
                )
            )

    # pass 2: everything else, with "in draw" context
    def visit(self, node: Any, in_draw: bool, assigned_to: str | None = None) -> None:
        if isinstance(node, list):
            for item in node:
                self.visit(item, in_draw)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind in ("FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression"):
            name = (node.get("id") or {}).get("name") or assigned_to
            inner = in_draw or name == "draw" or name in self.reachable_from_draw
            self.visit(node.get("body"), inner)
            return
        if kind == "VariableDeclaration":
            for decl in node.get("declarations") or []:
                self.declarator(decl, in_draw)
            return
        if kind == "AssignmentExpression":
            self.assignment(node, in_draw)
            return
        if kind == "UpdateExpression":
            target = node.get("argument") or {}
            self.update(node, target, counter=True, random=False, value_names=frozenset(), in_draw=in_draw)
            return
        if kind == "CallExpression":
            self.call(node, in_draw, assigned_to)
            return
        if kind in ("IfStatement", "ConditionalExpression"):
            self.conditional(node, in_draw)
            return
        for key, value in node.items():
            if key not in ("loc", "range") and isinstance(value, dict | list):
                self.visit(value, in_draw)

    def declarator(self, decl: dict[str, Any], in_draw: bool) -> None:
        name = (decl.get("id") or {}).get("name")
        init = decl.get("init")
        if name:
            self.f.variables.append(Variable(str(name), _line(decl), self.init_kind(init), in_draw))
        if init is not None:
            self.visit_value(init, in_draw, str(name) if name else None)

    def visit_value(self, value: dict[str, Any], in_draw: bool, assigned_to: str | None) -> None:
        if value.get("type") == "CallExpression":
            self.call(value, in_draw, assigned_to)
        elif value.get("type") in ("FunctionExpression", "ArrowFunctionExpression"):
            self.visit(value, in_draw, assigned_to)
        else:
            self.visit(value, in_draw)

    @staticmethod
    def init_kind(init: dict[str, Any] | None) -> str:
        if init is None:
            return "none"
        t = init.get("type")
        if t == "Literal":
            v = init.get("value")
            if isinstance(v, bool):
                return "bool"
            if isinstance(v, int | float):
                return "number"
            return "string" if isinstance(v, str) else "expression"
        if t == "UnaryExpression" and (init.get("argument") or {}).get("type") == "Literal":
            return "number"
        if t == "CallExpression":
            name = _callee_name(init)
            if name == "createSprite":
                return "sprite"
            if name == "createGroup":
                return "group"
            if name == "randomNumber":
                return "random"
            return "call"
        return "expression"

    def assignment(self, node: dict[str, Any], in_draw: bool) -> None:
        left = node.get("left") or {}
        right = node.get("right") or {}
        op = node.get("operator", "=")
        counter = op in ("+=", "-=")
        if op == "=" and right.get("type") == "BinaryExpression" and right.get("operator") in ("+", "-"):
            target = self.src(left)
            counter = any(
                self.src(side) == target for side in (right.get("left") or {}, right.get("right") or {})
            )
        if left.get("type") == "Identifier" and right.get("type") == "CallExpression":
            self.call(right, in_draw, str(left.get("name")))
        else:
            self.visit(right, in_draw)
        self.update(
            node,
            left,
            counter=counter,
            random=_uses_random(right),
            value_names=_names(right),
            in_draw=in_draw,
        )

    def update(
        self,
        node: dict[str, Any],
        target: dict[str, Any],
        *,
        counter: bool,
        random: bool,
        value_names: frozenset[str],
        in_draw: bool,
    ) -> None:
        if target.get("type") == "Identifier":
            name = str(target.get("name"))
            self.f.updates.append(
                Update(name, None, None, _line(node), _end_line(node), in_draw, counter, random, value_names)
            )
        elif target.get("type") == "MemberExpression":
            obj, prop = _member_parts(target)
            if obj and prop:
                self.f.updates.append(
                    Update(
                        f"{obj}.{prop}",
                        obj,
                        prop,
                        _line(node),
                        _end_line(node),
                        in_draw,
                        counter,
                        random,
                        value_names,
                    )
                )

    def call(self, node: dict[str, Any], in_draw: bool, assigned_to: str | None = None) -> None:
        name = _callee_name(node)
        args = node.get("arguments") or []
        if name:
            self.f.calls.append((name, _line(node), in_draw))
            elem_kind = (
                "sprite"
                if name in SPRITE_FUNCTIONS
                else "shape"
                if name in SHAPE_FUNCTIONS
                else "text"
                if name in TEXT_FUNCTIONS
                else None
            )
            if elem_kind:
                pos_args = args[1:3] if elem_kind == "text" else args[:2]
                self.f.elements.append(
                    Element(
                        elem_kind,
                        name,
                        assigned_to if elem_kind == "sprite" else None,
                        _line(node),
                        _end_line(node),
                        in_draw,
                        frozenset().union(*(_names(a) for a in pos_args)) if pos_args else frozenset(),
                        any(_uses_random(a) for a in pos_args),
                        all_arg_names=frozenset().union(*(_names(a) for a in args)) if args else frozenset(),
                    )
                )
        else:
            callee = node.get("callee") or {}
            obj, method = _member_parts(callee)
            if obj and method:
                self.f.method_calls.append(MethodCall(obj, method, _line(node), _end_line(node), in_draw))
            self.visit(callee, in_draw)
        for arg in args:
            self.visit(arg, in_draw)

    def conditional(self, node: dict[str, Any], in_draw: bool) -> None:
        test = node.get("test") or {}
        triggers: set[str] = set()
        inputs: list[str] = []
        declared = self.declared
        for n in _walk_dicts(test):
            t = n.get("type")
            if t == "CallExpression":
                name = _callee_name(n)
                if name in INPUT_FUNCTIONS:
                    triggers.add("input")
                    inputs.append(self.code[n["range"][0] : n["range"][1]] if n.get("range") else name)
                _, method = _member_parts(n.get("callee") or {})
                if method in INTERACTION_METHODS:
                    triggers.add("interaction")
            elif t == "MemberExpression":
                obj, prop = _member_parts(n)
                if prop in INPUT_NAMES:
                    triggers.add("input")
                    inputs.append(f"{obj}.{prop}")
                elif obj and prop and prop not in INTERACTION_METHODS:
                    triggers.add("property")
            elif t == "Identifier":
                name = str(n.get("name"))
                if name in INPUT_NAMES:
                    triggers.add("input")
                    inputs.append(name)
                elif name in declared and name not in self.fn_defs:
                    triggers.add("variable")
        # identifiers that are only the object of a member expression are properties, not variables
        member_objects = {
            (n.get("object") or {}).get("name")
            for n in _walk_dicts(test)
            if n.get("type") == "MemberExpression"
        }
        bare = {
            str(n.get("name"))
            for n in _walk_dicts(test)
            if n.get("type") == "Identifier" and n.get("name") not in member_objects
        }
        if "variable" in triggers and not (bare & declared):
            triggers.discard("variable")
        body = node.get("consequent") or {}
        has_body = bool(body.get("body")) if body.get("type") == "BlockStatement" else bool(body)
        if node.get("type") == "IfStatement":
            self.f.conditionals.append(
                Conditional(
                    _line(node),
                    _end_line(node),
                    in_draw,
                    frozenset(triggers),
                    tuple(dict.fromkeys(inputs)),
                    has_body,
                )
            )
        self.visit(test, in_draw)
        self.visit(node.get("consequent"), in_draw)
        self.visit(node.get("alternate"), in_draw)


# --- the fallback scanner for lines esprima rejected ---------------------------------------------


def _recover_line(f: Features, line_no: int, text: str) -> None:
    toks = [t for t in scan(text) if t.kind not in ("line_comment", "block_comment")]
    in_draw = bool(f.draw and f.draw[0] < line_no <= f.draw[1])
    for t in toks:
        if t.kind == "ident":
            f.uses.setdefault(t.value, []).append(line_no)

    def val(i: int) -> str:
        return toks[i].value if 0 <= i < len(toks) else ""

    assigned: str | None = None
    for i, tok in enumerate(toks):
        if tok.kind != "ident":
            continue
        if val(i + 1) == "(":
            name = tok.value
            if val(i - 1) == ".":
                f.method_calls.append(MethodCall(val(i - 2), name, line_no, line_no, in_draw))
                continue
            f.calls.append((name, line_no, in_draw))
            if i >= 2 and val(i - 1) == "=" and toks[i - 2].kind == "ident":
                assigned = val(i - 2)
            kind = (
                "sprite"
                if name in SPRITE_FUNCTIONS
                else "shape"
                if name in SHAPE_FUNCTIONS
                else "text"
                if name in TEXT_FUNCTIONS
                else None
            )
            if kind:
                args = _call_arg_tokens(toks, i + 1)
                pos = args[1:3] if kind == "text" else args[:2]
                pos_names = frozenset(t.value for a in pos for t in a if t.kind == "ident")
                f.elements.append(
                    Element(
                        kind,
                        name,
                        assigned if kind == "sprite" else None,
                        line_no,
                        line_no,
                        in_draw,
                        pos_names - {"randomNumber"},
                        "randomNumber" in pos_names,
                        recovered=True,
                        all_arg_names=frozenset(t.value for a in args for t in a if t.kind == "ident"),
                    )
                )
    # assignments: a = ..., a.b = ..., a += ..., a++
    for i, tok in enumerate(toks):
        if tok.kind == "punct" and tok.value in ("=", "+=", "-=", "++", "--") and i > 0:
            j = i - 1
            if toks[j].kind != "ident":
                continue
            target = toks[j].value
            obj = None
            if j >= 2 and val(j - 1) == "." and toks[j - 2].kind == "ident":
                obj = toks[j - 2].value
                target = f"{obj}.{toks[j].value}"
            rhs = toks[i + 1 :]
            rhs_text = "".join(t.value for t in rhs)
            counter = tok.value in ("+=", "-=", "++", "--") or (
                tok.value == "=" and (rhs_text.startswith(target + "+") or rhs_text.startswith(target + "-"))
            )
            f.updates.append(
                Update(
                    target,
                    obj,
                    toks[j].value if obj else None,
                    line_no,
                    line_no,
                    in_draw,
                    counter,
                    "randomNumber" in rhs_text,
                    frozenset(t.value for t in rhs if t.kind == "ident"),
                    recovered=True,
                )
            )
            if val(i - 3) == "var" or val(j - 1) == "var":
                f.variables.append(Variable(toks[j].value, line_no, "expression", in_draw))
    if toks and toks[0].value == "var" and len(toks) > 1 and toks[1].kind == "ident" and val(2) != "=":
        f.variables.append(Variable(toks[1].value, line_no, "none", in_draw))
    if any(t.value == "if" for t in toks):
        names = {t.value for t in toks if t.kind == "ident"}
        triggers: set[str] = set()
        if names & (INPUT_FUNCTIONS | INPUT_NAMES):
            triggers.add("input")
        if names & INTERACTION_METHODS:
            triggers.add("interaction")
        f.conditionals.append(
            Conditional(
                line_no,
                line_no,
                in_draw,
                frozenset(triggers),
                tuple(sorted(names & INPUT_FUNCTIONS)),
                True,
                recovered=True,
            )
        )


def _draw_range_from_tokens(code: str) -> tuple[int, int] | None:
    """Lines of ``function draw() {...}`` found by brace matching on scanner tokens."""
    toks = [t for t in scan(code) if t.kind not in ("line_comment", "block_comment")]
    for i in range(len(toks) - 1):
        if toks[i].value == "function" and toks[i + 1].value == "draw":
            depth = 0
            for tok in toks[i + 2 :]:
                if tok.value == "{":
                    depth += 1
                elif tok.value == "}":
                    depth -= 1
                    if depth == 0:
                        return toks[i].line, tok.line
            return toks[i].line, code.count("\n") + 1
    return None


def _call_arg_tokens(toks: list[Token], open_idx: int) -> list[list[Token]]:
    args: list[list[Token]] = [[]]
    depth = 0
    for tok in toks[open_idx:]:
        if tok.value in ("(", "[", "{"):
            depth += 1
            if depth == 1:
                continue
        elif tok.value in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                break
        elif tok.value == "," and depth == 1:
            args.append([])
            continue
        args[-1].append(tok)
    return [a for a in args if a]


def extract_features(code: str) -> Features:
    code = code.replace("\r\n", "\n").replace("\r", "\n")
    features = Features(lines=code.split("\n"))
    try:
        tree, blanked, parsed_code = _parse(code)
        if tree is not None:
            ex = _Extractor(parsed_code, tree, features)
            ex.index_functions()
            ex.visit(tree.get("body"), False)
    except RecursionError:  # absurdly deep nesting: read every line with the scanner instead
        features = Features(lines=code.split("\n"))
        blanked = list(range(1, len(features.lines) + 1))
    features.unparsed_lines = [n for n in blanked if features.line_text(n)]
    if features.draw is None and features.unparsed_lines:
        features.draw = _draw_range_from_tokens(code)
    for line_no in features.unparsed_lines:
        _recover_line(features, line_no, features.lines[line_no - 1])
    for attr in ("elements", "updates", "method_calls", "conditionals", "variables"):
        getattr(features, attr).sort(key=lambda x: x.line)
    features.calls.sort(key=lambda c: c[1])
    return features
