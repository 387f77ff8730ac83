"""What of a solution's text is put before a labeler: blank steps never, and an alternative only
when it says something other than the step it would replace.

Used by the workspace payload (``selectors.assignment_payload``) and by submit validation
(``services._solution_content``), so what is offered and what must be rated are the same set.
"""

from __future__ import annotations

from collections.abc import Iterable


def is_blank(text: str) -> bool:
    return not text.strip()


def _normalized(text: str) -> str:
    # Whitespace differences are not a different step ("x = 2." vs "x = 2.\n").
    return " ".join(text.split())


def offered_alternatives(step_text: str, alternatives: Iterable[tuple[int, str]]) -> list[int]:
    """Positions of the alternatives to offer for a step: not blank, not the step again, and
    not a repeat of an earlier alternative."""
    seen = {_normalized(step_text)}
    offered = []
    for position, text in sorted(alternatives):
        key = _normalized(text)
        if key and key not in seen:
            seen.add(key)
            offered.append(position)
    return offered
