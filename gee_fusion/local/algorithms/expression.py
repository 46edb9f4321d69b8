"""``Image.parseExpression`` / ``Image.expression``: Earth Engine's band-math language.

Supports numbers, variables, ``b('name')`` / ``b(index)`` on the default image, ``var.band``
access, ``+ - * / % **``, comparisons, ``&& || !``, the ternary ``c ? a : b``, parentheses
and the functions abs, sqrt, exp, log, log10, floor, ceil, round, sin, cos, tan, min, max,
float, int, double. Parsed with a small Pratt parser into calls on the same image operators.
"""

from __future__ import annotations

import re
from typing import Any

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import as_image
from gee_fusion.local.algorithms.image_bands import cast_band, image_select
from gee_fusion.local.algorithms.image_mask import image_where
from gee_fusion.local.algorithms.image_math import binary, unary
from gee_fusion.local.image import Image
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import Function

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>\*\*|==|!=|<=|>=|&&|\|\||[-+*/%<>!?:(),.]))"
)
_BINOPS = {
    "||": (1, "or"), "&&": (2, "and"), "==": (3, "eq"), "!=": (3, "neq"), "<": (4, "lt"),
    "<=": (4, "lte"), ">": (4, "gt"), ">=": (4, "gte"), "+": (5, "add"), "-": (5, "subtract"),
    "*": (6, "multiply"), "/": (6, "divide"), "%": (6, "mod"), "**": (8, "pow"),
}  # fmt: skip
_FUNCS = {"abs", "sqrt", "exp", "log", "log10", "floor", "ceil", "round", "sin", "cos", "tan"}


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split an expression into (kind, text) tokens."""
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise EngineError(f"Image.expression: unexpected character at {pos}: {text[pos:pos + 10]!r}.")
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
        value = self.expr(0)
        if self.peek() is not None:
            raise EngineError(f"Image.expression: unexpected {self.peek()[1]!r} in {self.text!r}.")  # type: ignore[index]
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
                left = image_where(as_image(no), left, yes)
                continue
            if tok[1] not in _BINOPS:
                return left
            prec, op = _BINOPS[tok[1]]
            if prec < min_prec or (prec == min_prec and op != "pow"):
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
        while (tok := self.peek()) is not None and tok[1] == ".":
            self.take(".")
            _, name = self.take()
            value = image_select(as_image(value), [name])
        return value

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
            return self.env[text]
        raise EngineError(f"Image.expression: unexpected {text!r} in {self.text!r}.")

    def call(self, name: str) -> Any:
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
        if name == "b":
            if self.default is None:
                raise EngineError("Image.expression: b() needs the image the expression is called on.")
            return image_select(self.default, [args[0]])
        if name in _FUNCS:
            return unary(name, args[0])
        if name in ("min", "max"):
            return binary(name, args[0], args[1])
        if name in ("float", "double", "int"):
            import numpy as np

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
        default = bound.get(argName)
        env = {k: v for k, v in bound.items() if k != argName}
        if mapFreeVarsToDefaultImageBands and isinstance(default, Image):
            for name in default.band_names:
                env.setdefault(name, image_select(default, [name]))
        return as_image(_Parser(expression, env, default).parse())

    return Function(tuple(vars), call, name="expression")
