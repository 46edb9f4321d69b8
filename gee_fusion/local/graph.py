"""Evaluation of Earth Engine's serialized expression graph (the Cloud API ``Expression``).

The graph is a table of named values (``values``) and the name of the result. A value is a
``constantValue``, a ``valueReference`` to another entry, an ``argumentReference`` to a
function parameter, an ``arrayValue``, a ``dictionaryValue``, a ``functionDefinitionValue``
(a closure over the enclosing arguments) or a ``functionInvocationValue`` (an algorithm by
name, or a function value by reference). Entries are memoised per request: those with no free
argument once, the others once per binding of their free arguments.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gee_fusion.errors import EngineError, GraphError
from gee_fusion.local.index import lookup
from gee_fusion.local.values import Deferred, Function

Env = dict[str, Any]


class Evaluator:
    """Evaluates one serialized expression; create one per request."""

    def __init__(self, expression: dict[str, Any]) -> None:
        try:
            self.values: dict[str, Any] = expression["values"]
            self.result: str = expression["result"]
        except (KeyError, TypeError) as exc:
            raise GraphError("An expression needs 'values' and 'result'.") from exc
        self._free: dict[str, frozenset[str]] = {}
        self._memo: dict[tuple[Any, ...], tuple[Any, tuple[Any, ...]]] = {}

    def run(self) -> Any:
        """Evaluate the result of the expression."""
        return self.ref(self.result, {})

    # -- free arguments -------------------------------------------------------------------
    def _free_ref(self, ref: str) -> frozenset[str]:
        hit = self._free.get(ref)
        if hit is None:
            self._free[ref] = frozenset()  # guards against (invalid) cycles
            hit = self._free_node(self._node(ref))
            self._free[ref] = hit
        return hit

    def _free_node(self, node: dict[str, Any]) -> frozenset[str]:
        if "argumentReference" in node:
            return frozenset([node["argumentReference"]])
        if "valueReference" in node:
            return self._free_ref(node["valueReference"])
        if "arrayValue" in node:
            return frozenset().union(*(self._free_node(v) for v in node["arrayValue"].get("values", [])))
        if "dictionaryValue" in node:
            vals = node["dictionaryValue"].get("values", {}).values()
            return frozenset().union(*(self._free_node(v) for v in vals))
        if "functionDefinitionValue" in node:
            fdef = node["functionDefinitionValue"]
            return self._free_ref(fdef["body"]) - set(fdef.get("argumentNames", []))
        if "functionInvocationValue" in node:
            inv = node["functionInvocationValue"]
            out = frozenset().union(*(self._free_node(v) for v in inv.get("arguments", {}).values()))
            if "functionReference" in inv:
                out |= self._free_ref(inv["functionReference"])
            return out
        return frozenset()

    # -- evaluation -----------------------------------------------------------------------
    def _node(self, ref: str) -> dict[str, Any]:
        try:
            return self.values[ref]
        except KeyError:
            raise GraphError(f"The expression references an undefined value {ref!r}.") from None

    def ref(self, ref: str, env: Env) -> Any:
        """Evaluate the table entry ``ref`` under the argument bindings ``env``."""
        free = sorted(self._free_ref(ref))
        bound = tuple(env[name] for name in free if name in env)
        key = (ref, *(id(v) for v in bound))
        hit = self._memo.get(key)
        if hit is not None:
            return hit[0]
        value = self.node(self._node(ref), env)
        self._memo[key] = (value, bound)  # keep bound values alive so their ids stay unique
        return value

    def node(self, node: dict[str, Any], env: Env) -> Any:
        """Evaluate one value node."""
        if "constantValue" in node:
            return node["constantValue"]
        if "valueReference" in node:
            return self.ref(node["valueReference"], env)
        if "argumentReference" in node:
            name = node["argumentReference"]
            if name not in env:
                raise GraphError(f"Argument {name!r} is referenced outside its function.")
            return env[name]
        if "arrayValue" in node:
            return [self.node(v, env) for v in node["arrayValue"].get("values", [])]
        if "dictionaryValue" in node:
            return {k: self.node(v, env) for k, v in node["dictionaryValue"].get("values", {}).items()}
        if "functionDefinitionValue" in node:
            return self._closure(node["functionDefinitionValue"], env)
        if "functionInvocationValue" in node:
            return self._invoke(node["functionInvocationValue"], env)
        if "integerValue" in node:
            return int(node["integerValue"])
        if "bytesValue" in node:
            raise EngineError("bytesValue constants are not supported by the local engine yet.")
        if "nullValue" in node:
            return None
        raise GraphError(f"Unknown expression node with keys {sorted(node)}.")

    def _closure(self, fdef: dict[str, Any], env: Env) -> Function:
        params = tuple(fdef.get("argumentNames", []))
        body = fdef["body"]

        def call(bound: dict[str, Any]) -> Any:
            return self.ref(body, {**env, **bound})

        return Function(params, call, name="<closure>")

    def _invoke(self, inv: dict[str, Any], env: Env) -> Any:
        raw_args: dict[str, Any] = inv.get("arguments", {})
        if "functionName" in inv:
            name = inv["functionName"]
            algo = lookup(name)
            args: dict[str, Any] = {}
            for key, sub in raw_args.items():
                if key in algo.lazy:
                    args[key] = _thunk(self, sub, env)
                else:
                    val = self.node(sub, env)
                    if val is not None:
                        args[key] = val
            return _call(name, algo.fn, args)
        if "functionReference" in inv:
            fn = self.ref(inv["functionReference"], env)
            if not callable(fn):
                raise GraphError("functionReference does not name a function value.")
            if getattr(fn, "lazy", False):  # e.g. Image.expression: unused variables are never evaluated
                return fn(**{k: Deferred(_thunk(self, v, env)) for k, v in raw_args.items()})
            args = {k: self.node(v, env) for k, v in raw_args.items()}
            return fn(**args)
        raise GraphError("functionInvocationValue needs functionName or functionReference.")


def _thunk(ev: Evaluator, node: dict[str, Any], env: Env) -> Callable[[], Any]:
    return lambda: ev.node(node, env)


_MISSING = re.compile(r"missing \d+ required (?:positional|keyword-only)? ?arguments?: '(\w+)'")


def _call(name: str, fn: Callable[..., Any], args: dict[str, Any]) -> Any:
    try:
        return fn(**args)
    except EngineError:
        raise
    except TypeError as exc:
        missing = _MISSING.search(str(exc))
        if missing:  # a null argument (e.g. the first() of an empty collection): Earth Engine's words
            raise EngineError(f"{name}: Parameter '{missing.group(1)}' is required.") from exc
        if "argument" in str(exc) and fn.__name__ in str(exc):
            raise EngineError(f"{name}: {exc}") from exc
        raise EngineError(f"{name}: {type(exc).__name__}: {exc}") from exc
    except (ValueError, KeyError, IndexError, ZeroDivisionError, AttributeError) as exc:
        raise EngineError(f"{name}: {type(exc).__name__}: {exc}") from exc


def evaluate(expression: dict[str, Any]) -> Any:
    """Evaluate a serialized expression and return its local-engine value."""
    return Evaluator(expression).run()
