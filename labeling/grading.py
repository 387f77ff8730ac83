"""Final-answer extraction and grading against a problem's reference answer.

Grading normalizes both answers lightly (LaTeX spacing, ``\\dfrac``, units in ``\\text{}``,
degrees, thousands separators), accepts an exact match, compares plain numbers exactly, and
otherwise asks math-verify for symbolic equality. See docs/grading.md for where this differs
from the paper's (more conservative) grader.

math-verify guards its sympy work with ``signal.alarm``, which only works on a process's main
thread. Off the main thread (dev server, thread pools) we call it without timeouts and instead
refuse inputs that could make sympy run away (huge exponents or factorials, very long answers).
"""

from __future__ import annotations

import logging
import re
import threading
from fractions import Fraction
from functools import lru_cache

from math_verify import parse, verify

# math-verify warns once when timeouts are disabled and logs every parse failure; both are
# expected here (free-form answers), so keep them out of import progress output.
logging.getLogger("math_verify").setLevel(logging.ERROR)

ANSWER_MARKER = "# Answer"
# Seconds math-verify may spend on one parse or one comparison (main thread only).
SYMBOLIC_TIMEOUT_S = 3
# Answers longer than this are only compared as normalized strings off the main thread.
MAX_UNGUARDED_LENGTH = 200

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
# GSM8K's final-answer line, "#### 72". Markdown headings ("#### Step 2: ...") also start with
# four hashes, so the line counts only when what follows starts like a value.
_GSM8K_LINE = re.compile(r"^[ \t]*####[ \t]*(?!#)(.*?)[ \t]*$", re.M)
_ANSWER_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*[:=]?\s*", re.I)
_VALUE_START = re.compile(r"^(?:[-+$.(\[{]|\\|\d)")
_SPACING = re.compile(r"\\[,;:]|\\ |~|\\quad|\\qquad|\\displaystyle")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°|\\degree")
_TEXT_ONLY = re.compile(r"^\\(?:text|textbf|mbox|mathrm)\{([^{}]*)\}$")
# A trailing unit such as "\text{ cm}" or "\mbox{inches}^2" after a value.
_TRAILING_UNIT = re.compile(
    r"(?<=\S)\s*\\(?:text|mbox|mathrm)\{\s*[A-Za-z][A-Za-z .]*\}(\^\{?\d\}?)?$"
)
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:(?:,|\{,\}) ?\d{3})+(?:\.\d+)?$")
_PLAIN_NUMBER = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)$")
# A numeral in another base, "4210_{5}": math-verify would drop the subscript.
_BASE_NUMERAL = re.compile(r"^([0-9A-Za-z]+)_\{?(\d+)\}?$")
_SIMPLE_FRACTION = re.compile(r"^(-?)\\frac\{(-?\d+)\}\{(\d+)\}$")
# sympy evaluates integer powers and factorials eagerly: 10^{100000} or 5000! can stall it.
_RISKY = re.compile(r"\^\s*\{?\s*-?\d{4,}|\^\s*\{[^}]*\^|\d{4,}\s*!|\\underbrace|\\overbrace")


def extract_final_answer(steps: list[str]) -> str | None:
    """The solution's final answer: the text after the ``# Answer`` line of the last step, else
    the last answer the solution marks, a GSM8K ``#### 72`` line or a ``\\boxed{...}`` (the
    later one in the text), else None."""
    if not steps:
        return None
    last = steps[-1]
    lines = last.split("\n")
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].strip() == ANSWER_MARKER:
            answer = "\n".join(lines[index + 1 :]).strip()
            return answer or None
    for step in reversed(steps):
        marked = _last_marked_answer(step)
        if marked is not None:
            return marked
    return None


def _last_marked_answer(text: str) -> str | None:
    gsm8k = _last_gsm8k_answer(text)
    boxed = _last_boxed_match(text)
    if gsm8k is None:
        return None if boxed is None else boxed[1]
    if boxed is None or gsm8k[0] > boxed[0]:
        return gsm8k[1]
    return boxed[1]


def _last_gsm8k_answer(text: str) -> tuple[int, str] | None:
    """(offset, answer) of the last ``#### value`` line; headings are skipped."""
    if "####" not in text:
        return None
    for match in reversed(list(_GSM8K_LINE.finditer(text))):
        answer = _ANSWER_PREFIX.sub("", match.group(1)).strip().rstrip(".").strip()
        if answer and _VALUE_START.match(answer):
            return match.start(), answer
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (braces balanced), or None."""
    found = _last_boxed_match(text)
    return None if found is None else found[1]


def _last_boxed_match(text: str) -> tuple[int, str] | None:
    matches = list(_BOXED.finditer(text))
    for match in reversed(matches):
        depth = 1
        start = match.end()
        for position in range(start, len(text)):
            char = text[position]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    content = text[start:position].strip()
                    return (match.start(), content) if content else None
    return None


def normalize_answer(answer: str) -> str:
    """Light, meaning-preserving clean-up applied before comparing two answers."""
    text = answer.strip()
    # A whole worked solution given as the answer (GSM8K's answer field, a model's last step).
    marked = _last_marked_answer(text) if "####" in text or "box" in text else None
    if marked is not None:
        text = marked
    text = text.strip().strip("$").strip()
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = text.replace("\\left", "").replace("\\right", "")
    text = text.replace("\\!", "")  # negative thin space, as in MATH's "10,\\!080"
    text = _SPACING.sub(" ", text)
    text = _DEGREES.sub("", text)
    text = text.replace("\\%", "").replace("%", "").replace("\\$", "")
    text = re.sub(r"\s+", " ", text).strip()
    only_text = _TEXT_ONLY.match(text)
    if only_text:
        text = only_text.group(1).strip()
    for _ in range(3):  # "5 \text{ cm}^2", at most a few stacked units
        stripped = _TRAILING_UNIT.sub("", text).strip()
        if stripped == text:
            break
        text = stripped
    if _THOUSANDS.match(text):
        text = re.sub(r"\{,\}|,| ", "", text)
    # "\frac12" -> "\frac{1}{2}"
    text = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", text)
    text = text.rstrip(".").strip()
    return text


def _exact_number(text: str) -> Fraction | None:
    if _PLAIN_NUMBER.match(text):
        return Fraction(text)
    fraction = _SIMPLE_FRACTION.match(text)
    if fraction:
        sign, numerator, denominator = fraction.groups()
        if int(denominator) == 0:
            return None
        value = Fraction(int(numerator), int(denominator))
        return -value if sign else value
    return None


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@lru_cache(maxsize=100_000)
def _parsed(text: str, guarded: bool) -> list:
    timeout = SYMBOLIC_TIMEOUT_S if guarded else None
    return parse(f"${text}$", parsing_timeout=timeout)


def _symbolically_equal(given: str, reference: str, guarded: bool) -> bool:
    if not guarded and (
        len(given) > MAX_UNGUARDED_LENGTH
        or len(reference) > MAX_UNGUARDED_LENGTH
        or _RISKY.search(given)
        or _RISKY.search(reference)
    ):
        return False
    gold = _parsed(reference, guarded)
    target = _parsed(given, guarded)
    if not gold or not target:
        return False
    return verify(gold, target, timeout_seconds=SYMBOLIC_TIMEOUT_S if guarded else None)


@lru_cache(maxsize=100_000)
def _grade_normalized(given: str, reference: str, guarded: bool) -> bool:
    if given == reference:
        return True
    reference_base = _BASE_NUMERAL.match(reference)
    if reference_base:
        # Digits must match exactly; the subscript may be left out but not changed.
        given_base = _BASE_NUMERAL.match(given)
        if given_base:
            return given_base.groups() == reference_base.groups()
        return given.upper() == reference_base.group(1).upper()
    given_number = _exact_number(given)
    reference_number = _exact_number(reference)
    if given_number is not None and reference_number is not None:
        return given_number == reference_number
    return _symbolically_equal(given, reference, guarded)


def grade_answer(given: str | None, reference: str) -> bool:
    """True when ``given`` is the same answer as ``reference`` (normalized, then symbolic)."""
    if given is None or not reference or not reference.strip():
        return False
    return _grade(given, reference, _on_main_thread())


def same_answer(first: str | None, second: str | None) -> bool:
    """True when two final answers are the same answer (``\\frac{1}{2}``, ``1/2``, ``0.5``): the
    grader's equivalence, for grouping answers such as majority voting. The two are always
    compared in one order, so the result does not depend on which comes first."""
    if first is None or second is None:
        return False
    if first == second:
        return True
    reference, given = sorted((first, second))
    return grade_answer(given, reference)


@lru_cache(maxsize=100_000)
def _grade(given: str, reference: str, guarded: bool) -> bool:
    normalized_given = normalize_answer(given)
    normalized_reference = normalize_answer(reference)
    if not normalized_given or not normalized_reference:
        return False
    return _grade_normalized(normalized_given, normalized_reference, guarded)
