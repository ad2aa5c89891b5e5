"""Arithmetic for the agent without `eval`: an AST walker over a small whitelist, with size limits."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

MAX_EXPRESSION_CHARS = 500
"""Longest expression accepted; anything longer is not a calculator question."""
MAX_AST_NODES = 200
"""Nodes in the parsed expression; bounds the work one call can do."""
MAX_INT_BITS = 4096
"""Largest integer (in bits) any intermediate result may reach; stops `9**9**9`-style blow-ups."""
MAX_FACTORIAL_ARG = 300
"""Largest n for factorial(n) (300! has ~2000 bits)."""

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitXor: operator.pow,  # `2^10` means a power on a calculator; bitwise xor is never what is meant here
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _factorial(n: Number) -> int:
    if not float(n).is_integer() or n < 0:
        raise SafeMathError("factorial needs a non-negative integer")
    if n > MAX_FACTORIAL_ARG:
        raise SafeMathError(f"factorial argument above {MAX_FACTORIAL_ARG}")
    return math.factorial(int(n))


def _mean(*values: Number) -> float:
    if not values:
        raise SafeMathError("mean of nothing")
    return math.fsum(values) / len(values)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sum": lambda *xs: math.fsum(xs),
    "mean": _mean,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "floor": math.floor,
    "ceil": math.ceil,
    "factorial": _factorial,
    "hypot": math.hypot,
}
ALLOWED_NAMES = frozenset(_FUNCTIONS) | frozenset(_CONSTANTS)


class SafeMathError(ValueError):
    """The expression is not allowed, too large, or mathematically undefined; the message says which."""


def evaluate(expression: str) -> Number:
    """Value of an arithmetic expression such as `sqrt(2) * (3 + 4) ^ 2`; raises `SafeMathError` otherwise."""
    text = expression.strip()
    if not text:
        raise SafeMathError("empty expression")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise SafeMathError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise SafeMathError(f"not an arithmetic expression: {exc.msg}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_AST_NODES:
        raise SafeMathError(f"expression has more than {MAX_AST_NODES} parts")
    try:
        return _eval(tree.body)
    except ZeroDivisionError:
        raise SafeMathError("division by zero") from None
    except OverflowError:
        raise SafeMathError("result too large") from None
    except (ValueError, TypeError) as exc:
        if isinstance(exc, SafeMathError):
            raise
        raise SafeMathError(f"math error: {exc}") from None


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _checked(node.value)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise SafeMathError(f"unknown name {node.id!r}; allowed: {', '.join(sorted(ALLOWED_NAMES))}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow | ast.BitXor):
            _check_power(left, right)
        return _checked(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Call):
        return _call(node)
    raise SafeMathError(f"{type(node).__name__} is not allowed in a calculation")


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        raise SafeMathError(f"function {name!r} is not allowed; allowed: {', '.join(sorted(_FUNCTIONS))}")
    if node.keywords:
        raise SafeMathError("keyword arguments are not allowed")
    args: list[Number] = []
    for arg in node.args:
        if isinstance(arg, ast.List | ast.Tuple):  # sum([1, 2]) and sum(1, 2) both work
            args.extend(_eval(item) for item in arg.elts)
        else:
            args.append(_eval(arg))
    return _checked(_FUNCTIONS[node.func.id](*args))


def _check_power(base: Number, exponent: Number) -> None:
    """Refuse powers whose integer result would exceed MAX_INT_BITS before computing them."""
    ints = isinstance(base, int) and isinstance(exponent, int)
    if ints and abs(base) > 1 and exponent > 0 and exponent * math.log2(abs(base)) > MAX_INT_BITS:
        raise SafeMathError(f"result would exceed {MAX_INT_BITS} bits")


def _checked(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SafeMathError(f"result is {type(value).__name__}, not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise SafeMathError(f"result would exceed {MAX_INT_BITS} bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise SafeMathError("result is not a finite number")
    return value


def format_number(value: Number) -> str:
    """Short text for a result: integers exactly, floats to 12 significant digits."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value) if isinstance(value, int) else f"{value:.12g}"
