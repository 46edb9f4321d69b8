"""``Image.parseExpression`` / ``Image.expression``: Earth Engine's band-math language.

Supports numbers, variables, ``b('name')`` / ``b(index)`` / ``b(0, 'name')`` / ``b()`` on the
default image, ``var.band`` and ``var[0]`` / ``var['name']`` access, ``+ - * / % **``,
comparisons, ``&& || !``, the ternary ``c ? a : b``, parentheses, naming a single-band result
with ``name = ...`` and the functions abs, sqrt, exp, log, log10, floor, ceil, round, signum,
sin, cos, tan, asin, acos, atan, sinh, cosh, tanh, min, max, float, int, double. Parsed with a
small Pratt parser into calls on the same image operators.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import as_image, promote
from gee_fusion.local.algorithms.image_bands import cast_band, image_rename, image_select
from gee_fusion.local.algorithms.image_mask import pair_bands
from gee_fusion.local.algorithms.image_math import binary, unary
from gee_fusion.local.image import Band, FuncNode, Image, Pixels
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import Function, resolve

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>\*\*|==|!=|<=|>=|&&|\|\||[-+*/%<>!?:(),.\[\]=]))"
)
_BINOPS = {
    "||": (1, "or"), "&&": (2, "and"), "==": (3, "eq"), "!=": (3, "neq"), "<": (4, "lt"),
    "<=": (4, "lte"), ">": (4, "gt"), ">=": (4, "gte"), "+": (5, "add"), "-": (5, "subtract"),
    "*": (6, "multiply"), "/": (6, "divide"), "%": (6, "mod"), "**": (8, "pow"),
}  # fmt: skip
_FUNCS = {"abs", "sqrt", "exp", "log", "log10", "floor", "ceil", "round", "signum", "sin", "cos",
          "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh"}  # fmt: skip


def conditional(cond: Any, yes: Any, no: Any) -> Image:
    """The ternary ``cond ? yes : no`` per pixel and band.

    Bands pair as in binary operators (a single band is used against every band). A pixel is
    valid where ``cond`` is valid and the branch it takes is valid. Bands are named after
    ``cond`` (the first operand) unless a branch has more bands.
    """
    c, y, n = as_image(cond), as_image(yes), as_image(no)
    pairs = pair_bands(c, y, "Image.expression")
    width = max(len(c.bands), len(y.bands))
    ref = c if len(c.bands) == width else y
    n_bands = [n.bands[0]] * width if len(n.bands) == 1 else list(n.bands)
    if len(n_bands) != width and width != 1:
        raise EngineError(
            "Image.expression: the operands of '?:' must contain the same number of bands or "
            f"only 1 band. Got {len(c.bands)}, {len(y.bands)} and {len(n.bands)}."
        )
    if width == 1 and len(n_bands) > 1:
        pairs, ref = pairs * len(n_bands), n
    bands = []
    for i, ((cb, yb), nb) in enumerate(zip(pairs, n_bands, strict=True)):
        dtype = promote(yb, nb)

        def fn(cpx: Pixels, ypx: Pixels, npx: Pixels, _dt: np.dtype = dtype) -> Pixels:
            take = np.asarray(cpx[0]) != 0
            vals = np.where(take, ypx[0], npx[0]).astype(_dt, copy=False)
            return vals, cpx[1] & np.where(take, ypx[1], npx[1])

        name = ref.bands[i].name
        bands.append(Band(name, dtype, FuncNode(fn, [cb.node, yb.node, nb.node]), cb.projection,
                          cb.dimensions))  # fmt: skip
    return Image(tuple(bands))


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split an expression into (kind, text) tokens."""
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise EngineError(f"Image.expression: unexpected character at {pos}: {text[pos : pos + 10]!r}.")
        kind = m.lastgroup or "op"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, env: dict[str, Any], default: Image | None) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.env = env
        self.default = default
        self.text = text

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (expected is not None and tok[1] != expected):
            raise EngineError(f"Image.expression: expected {expected or 'a token'} in {self.text!r}.")
        self.i += 1
        return tok

    def parse(self) -> Any:
        name = None
        if len(self.tokens) > 2 and self.tokens[0][0] == "name" and self.tokens[1] == ("op", "="):
            name = self.tokens[0][1]
            self.i = 2
        value = self.expr(0)
        if self.peek() is not None:
            raise EngineError(f"Image.expression: unexpected {self.peek()[1]!r} in {self.text!r}.")  # type: ignore[index]
        if name is not None:
            image = as_image(value)
            if len(image.bands) != 1:
                raise EngineError(
                    f"Image.expression: only a single-band result can be named ('{name} = ...'); "
                    f"this one has {len(image.bands)} bands."
                )
            value = image_rename(image, [name])
        return value

    def expr(self, min_prec: int) -> Any:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok[0] != "op":
                return left
            if tok[1] == "?" and min_prec == 0:
                self.take("?")
                yes = self.expr(0)
                self.take(":")
                no = self.expr(0)
                left = conditional(left, yes, no)
                continue
            if tok[1] not in _BINOPS:
                return left
            prec, op = _BINOPS[tok[1]]
            if prec < min_prec:
                return left
            self.take()
            right = self.expr(prec + (0 if op == "pow" else 1))
            left = binary(op, left, right)

    def unary(self) -> Any:
        tok = self.peek()
        if tok is not None and tok[1] == "-":
            self.take()
            return binary("multiply", self.expr(7), -1)
        if tok is not None and tok[1] == "+":
            self.take()
            return self.expr(7)
        if tok is not None and tok[1] == "!":
            self.take()
            return unary("not", self.expr(7))
        return self.postfix(self.primary())

    def postfix(self, value: Any) -> Any:
        while (tok := self.peek()) is not None and tok[1] in (".", "["):
            if tok[1] == ".":
                self.take(".")
                _, name = self.take()
                value = image_select(as_image(value), [name])
                continue
            self.take("[")
            selectors = self.selectors("]")
            value = image_select(as_image(value), selectors)
        return value

    def selectors(self, close: str) -> list[Any]:
        """Band selectors (names, indices) up to ``close``, which is consumed."""
        out: list[Any] = []
        while (tok := self.peek()) is not None and tok[1] != close:
            kind, text = self.take()
            if kind == "str":
                out.append(text[1:-1])
            elif kind == "num" and not any(c in text for c in ".eE"):
                out.append(int(text))
            else:
                raise EngineError(f"Image.expression: band selectors must be names or indices, got {text!r}.")
            if (tok := self.peek()) is not None and tok[1] == ",":
                self.take(",")
        self.take(close)
        return out

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "num":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if text == "(":
            value = self.expr(0)
            self.take(")")
            return value
        if kind == "name":
            nxt = self.peek()
            if nxt is not None and nxt[1] == "(":
                return self.call(text)
            if text not in self.env:
                raise EngineError(f"Image.expression: unknown variable '{text}'.")
            return resolve(self.env[text])
        raise EngineError(f"Image.expression: unexpected {text!r} in {self.text!r}.")

    def call(self, name: str) -> Any:
        if name == "b":
            if self.default is None:
                raise EngineError("Image.expression: b() needs the image the expression is called on.")
            self.take("(")
            selectors = self.selectors(")")
            return image_select(self.default, selectors) if selectors else self.default
        self.take("(")
        args = []
        while (tok := self.peek()) is not None and tok[1] != ")":
            if tok[0] == "str":
                self.take()
                args.append(tok[1][1:-1])
            else:
                args.append(self.expr(0))
            if (tok := self.peek()) is not None and tok[1] == ",":
                self.take(",")
        self.take(")")
        if name in _FUNCS:
            return unary(name, args[0])
        if name in ("min", "max"):
            return binary(name, args[0], args[1])
        if name in ("float", "double", "int"):
            dt = {"float": np.float32, "double": np.float64, "int": np.int32}[name]
            img = as_image(args[0])
            return img.with_bands([cast_band(b, np.dtype(dt)) for b in img.bands])
        raise EngineError(f"Image.expression: unknown function '{name}'.")


@algorithm("Image.parseExpression")
def image_parse_expression(expression: str, argName: str, vars: list[str],
                           mapFreeVarsToDefaultImageBands: bool = False) -> Function:  # fmt: skip
    """Parse an expression into a function of its variables (and the default image)."""
    tokenize(expression)  # syntax errors surface at parse time

    def call(bound: dict[str, Any]) -> Image:
        default = resolve(bound.get(argName))
        env = {k: v for k, v in bound.items() if k != argName}
        if mapFreeVarsToDefaultImageBands and isinstance(default, Image):
            for name in default.band_names:
                env.setdefault(name, image_select(default, [name]))
        return as_image(_Parser(expression, env, default).parse())

    return Function(tuple(vars), call, name="expression", lazy=True)
