"""Rewrites of a reference answer that must grade equal, and a perturbation that must not."""

from __future__ import annotations

import re
from fractions import Fraction

_FRACTION = re.compile(r"^(-?)\\frac\{(\d+)\}\{(\d+)\}$")
_INTEGER = re.compile(r"^-?\d+$")


def equal_rewrites(answer: str) -> list[str]:
    """Forms a person would write for the same value."""
    rewrites = [f"${answer}$", f"\\boxed{{{answer}}}", f" {answer} "]
    if "\\frac" in answer:
        rewrites.append(answer.replace("\\frac", "\\dfrac"))
    if "\\left" in answer:
        rewrites.append(answer.replace("\\left", "").replace("\\right", ""))
    fraction = _FRACTION.match(answer)
    if fraction:
        sign, numerator, denominator = fraction.groups()
        value = Fraction(int(numerator), int(denominator)) * (-1 if sign else 1)
        if len(numerator) == 1 and len(denominator) == 1:
            rewrites.append(f"{sign}\\dfrac{numerator}{denominator}")
        rewrites.append(f"{sign}{numerator}/{denominator}")
        scaled = value.denominator
        while scaled % 2 == 0:
            scaled //= 2
        while scaled % 5 == 0:
            scaled //= 5
        if scaled == 1:  # terminating decimal
            rewrites.append(str(float(value)))
    if ",\\!" in answer and re.fullmatch(r"[\d,\\! $]+", answer):  # MATH's "10,\!080"
        rewrites.append(re.sub(r"[^\d]", "", answer))
    if _INTEGER.match(answer):
        number = int(answer)
        rewrites += [f"{answer}.0", f"{answer}\\text{{ units}}", f"{answer}^\\circ"]
        if abs(number) >= 1000:
            rewrites.append(f"{number:,}")
    return rewrites


def perturbed(answer: str) -> str:
    """A different answer: the first digit bumped, else a letter changed, else '+1'."""
    digits = [m.start() for m in re.finditer(r"\d", answer)]
    if digits:
        at = digits[0]
        return answer[:at] + str((int(answer[at]) + 1) % 10) + answer[at + 1 :]
    letters = [m.start() for m in re.finditer(r"(?<!\\)\b[a-zA-Z]\b", answer)]
    if letters:
        at = letters[-1]
        replacement = "q" if answer[at] != "q" else "w"
        return answer[:at] + replacement + answer[at + 1 :]
    return answer + "+1"
