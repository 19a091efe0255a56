"""Robust reading of a box's LaTeX content as an integer answer 0..999 (or None).

Strips presentation (\\text, \\, and {,} separators, ^\\circ, \\%, \\$, trailing period, "x =")
and evaluates what is left with a tiny exact-arithmetic parser; non-integers give None.
"""

from __future__ import annotations

import re
from fractions import Fraction

from aimo.core.errors import AimoError

MAX_CONTENT_CHARS = 1000
"""Longer contents are not read (no answer): they are prose, not a number."""

_MAX_NUMBER_DIGITS = 400
_MAX_NESTING = 64
_MAX_POWER_BITS = 100_000

_WRAPPER = re.compile(
    r"\\(?:text|textbf|textit|textrm|textsf|texttt|textnormal|mathrm|mathbf|mathit|mathsf|"
    r"mathtt|mathnormal|mbox|boxed|fbox|framebox|bm|boldsymbol|operatorname)\s*\{"
)
_NOISE: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ(?![A-Za-z])|°|\\degree(?![A-Za-z])", ""),
        (r"\{,\}", ","),
        (r"\\[,!;: ]", ""),
        (r"[\u00a0\u2002-\u200b\u202f]", ""),
        (r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|bigg|Bigg)(?![A-Za-z])", ""),
        (r"\\(?:displaystyle|textstyle|quad|qquad)(?![A-Za-z])|~", " "),
        (r"\\?%|\\?\$|\\[()\[\]]", ""),
        (r"[\u2212\u2013]", "-"),
    )
)
_LABEL = re.compile(r"^[A-Za-z][A-Za-z ]*:\s*")
_TRAILING_WORDS = re.compile(r"\s+[A-Za-z]{2,}(?:\s+[A-Za-z]{2,})*$")
_THOUSANDS_COMMA = re.compile(r"[+-]?\s*\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_THOUSANDS_SPACE = re.compile(r"[+-]?\s*\d{1,3}(?: \d{3})+(?:\.\d*)?")
_FRAC_DIGITS = re.compile(r"\\[dtc]?frac\s*(\d)\s*(\d)")
_TOKEN = re.compile(
    r"\s*(?:(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"|(?P<cmd>\\[A-Za-z]+)"
    r"|(?P<op>[-+*/^()\[\]{}×·÷]))"
)
_COMMANDS = {
    "\\frac": "frac",
    "\\dfrac": "frac",
    "\\tfrac": "frac",
    "\\cfrac": "frac",
    "\\cdot": "*",
    "\\times": "*",
    "\\div": "/",
}
_OPS = {"×": "*", "·": "*", "÷": "/"}
_CLOSERS = {"(": ")", "[": "]", "{": "}"}


class _Unreadable(AimoError):
    """The content is not a plain arithmetic expression."""


def normalize_answer(content: str) -> int | None:
    """Robust value of a box's content: an int in 0..999 when it denotes an integer, else None.

    Never raises. Negative integers follow the seed's `% 1000` (-3 -> 997); decimals must be
    whole ("12.0" -> 12, "12.5" -> None, where the seed would truncate to 12).
    """
    if len(content) > MAX_CONTENT_CHARS:
        return None
    try:
        value = _evaluate(_clean(content))
    except (_Unreadable, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None
    if value.denominator != 1:
        return None
    return int(value) % 1000


def _clean(content: str) -> str:
    """Presentation stripped: wrappers unwrapped, separators/units/labels removed."""
    s = _unwrap(content)
    for pattern, replacement in _NOISE:
        s = pattern.sub(replacement, s)
    s = s.strip().rstrip(". ").strip()
    s = _LABEL.sub("", s)
    if "=" in s:
        s = s.rsplit("=", 1)[1]
    s = _TRAILING_WORDS.sub("", s.strip()).strip()
    if _THOUSANDS_COMMA.fullmatch(s):
        s = s.replace(",", "")
    elif _THOUSANDS_SPACE.fullmatch(s):
        s = s.replace(" ", "")
    return _FRAC_DIGITS.sub(r"\\frac{\1}{\2}", s)


def _unwrap(s: str) -> str:
    """`\\text{X}`, `\\boxed{X}`, … replaced by X (an unclosed wrapper loses only its opener)."""
    while (m := _WRAPPER.search(s)) is not None:
        end = _matching_brace(s, m.end())
        if end < 0:
            s = s[: m.start()] + s[m.end() :]
        else:
            s = s[: m.start()] + s[m.end() : end] + s[end + 1 :]
    return s


def _matching_brace(s: str, start: int) -> int:
    """Index of the `}` closing a group whose `{` precedes `start`, or -1; `\\x` escapes x."""
    depth, escape = 1, False
    for j in range(start, len(s)):
        c = s[j]
        if escape:
            escape = False
        elif c == "\\":
            escape = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _tokenize(s: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: kind is "num", "frac" or "op"; anything else is unreadable."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if m is None:
            if s[pos:].strip():
                raise _Unreadable(s[pos:])
            break
        pos = m.end()
        if m.group("num") is not None:
            tokens.append(("num", m.group("num")))
        elif m.group("cmd") is not None:
            kind = _COMMANDS.get(m.group("cmd"))
            if kind is None:
                raise _Unreadable(m.group("cmd"))
            tokens.append(("frac", "") if kind == "frac" else ("op", kind))
        else:
            op = m.group("op")
            tokens.append(("op", _OPS.get(op, op)))
    return tokens


def _evaluate(s: str) -> Fraction:
    """Exact value of `s` (numbers, + - * / ^, brackets, \\frac); raises _Unreadable otherwise."""
    tokens = _tokenize(s)
    if not tokens:
        raise _Unreadable("empty")
    return _Parser(tokens).parse()


class _Parser:
    """Recursive-descent parser over `_tokenize` output; nesting is bounded."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._i = 0
        self._depth = 0

    def parse(self) -> Fraction:
        value = self._expr()
        if self._i != len(self._tokens):
            raise _Unreadable("trailing tokens")
        return value

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._i] if self._i < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise _Unreadable("unexpected end")
        self._i += 1
        return token

    def _at_op(self, *ops: str) -> bool:
        token = self._peek()
        return token is not None and token[0] == "op" and token[1] in ops

    def _expect(self, op: str) -> None:
        if not self._at_op(op):
            raise _Unreadable(f"expected {op}")
        self._i += 1

    def _expr(self) -> Fraction:
        value = self._term()
        while self._at_op("+", "-"):
            op = self._take()[1]
            right = self._term()
            value = value + right if op == "+" else value - right
        return value

    def _term(self) -> Fraction:
        value = self._unary()
        while self._at_op("*", "/"):
            op = self._take()[1]
            right = self._unary()
            value = value * right if op == "*" else value / right
        return value

    def _unary(self) -> Fraction:
        if self._at_op("+", "-"):
            op = self._take()[1]
            self._enter()
            value = self._unary()
            self._depth -= 1
            return -value if op == "-" else value
        return self._power()

    def _power(self) -> Fraction:
        base = self._atom()
        if not self._at_op("^"):
            return base
        self._i += 1
        sign = 1
        if self._at_op("+", "-"):
            sign = -1 if self._take()[1] == "-" else 1
        return _whole_power(base, sign * self._atom())

    def _atom(self) -> Fraction:
        self._enter()
        kind, text = self._take()
        if kind == "num":
            value = _number(text)
        elif kind == "frac":
            numerator = self._argument()
            value = numerator / self._argument()
        elif text in _CLOSERS:
            value = self._expr()
            self._expect(_CLOSERS[text])
        else:
            raise _Unreadable(text)
        self._depth -= 1
        return value

    def _argument(self) -> Fraction:
        """A \\frac argument: a braced group or a single digit."""
        if self._at_op("{"):
            self._i += 1
            value = self._expr()
            self._expect("}")
            return value
        kind, text = self._take()
        if kind != "num" or len(text) != 1:
            raise _Unreadable("frac argument")
        return Fraction(int(text))

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > _MAX_NESTING:
            raise _Unreadable("nesting")


def _number(text: str) -> Fraction:
    """Exact value of a decimal literal such as "12", "12.", "12.50" or ".5"."""
    if len(text) > _MAX_NUMBER_DIGITS:
        raise _Unreadable("number too long")
    whole, _, decimals = text.partition(".")
    scale = 10 ** len(decimals)
    return Fraction(int(whole or "0") * scale + int(decimals or "0"), scale)


def _whole_power(base: Fraction, exponent: Fraction) -> Fraction:
    """base ** exponent for a whole exponent of bounded result size."""
    if exponent.denominator != 1:
        raise _Unreadable("fractional exponent")
    e = int(exponent)
    bits = max(abs(base.numerator).bit_length(), base.denominator.bit_length())
    if bits * abs(e) > _MAX_POWER_BITS:
        raise _Unreadable("power too large")
    return base**e
