"""Turn a sampled text into the paper's shape: steps (one per line) and a final answer block.

The answer block is appended to the last step as PRM800K writes it ("...= 8.\n\n# Answer\n\n8"),
so the stored steps read the same whether a solution was imported or generated. Accepted
answer markers: `# Answer` (any number of `#`, any case, with the answer on the same line after
a colon or on the next non-blank line) and GSM8K's `#### 42`. What follows the answer line is
dropped: small models often go on with commentary or the next problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from training.generator.prompt import ANSWER_MARKER

_MARKER = re.compile(r"^#+\s*answer\b\s*:?\s*(.*)$", re.IGNORECASE)
# "#### 42" (GSM8K); a markdown heading such as "#### Step 2" is not an answer.
_GSM8K = re.compile(r"^####\s*([-+$\\(\[0-9.].*)$")
# Markdown bold around the marker ("**# Answer**") and a list bullet are noise around the line.
_LINE_WRAPPING = re.compile(r"^(?:[*_`>]+|-\s+)+|[*_`]+$")
_ANSWER_WRAPPING = re.compile(r"^[*_`\s]+|[*_`\s]+$")


@dataclass(frozen=True)
class ParsedSolution:
    steps: list[str]  # reasoning lines; the last one carries the answer block when there is one
    answer: str | None  # the text after the answer marker, if the sample had one
    reasoning_steps: int  # lines of reasoning before the marker

    @property
    def is_empty(self) -> bool:
        """No reasoning at all (blank output, or an answer with no step before it)."""
        return self.reasoning_steps == 0


def _marker_answer(line: str) -> tuple[bool, str]:
    """(is this an answer-marker line, the answer written on the same line)."""
    bare = _LINE_WRAPPING.sub("", line).strip()
    match = _MARKER.match(bare)
    if match:
        return True, _ANSWER_WRAPPING.sub("", match.group(1))
    match = _GSM8K.match(bare)
    if match:
        return True, match.group(1).strip()
    return False, ""


def split_solution(text: str) -> ParsedSolution:
    """Steps and answer of one sample (see the module docstring for the accepted shapes)."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    steps: list[str] = []
    answer: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        is_marker, inline = _marker_answer(line)
        if not is_marker:
            steps.append(line)
            continue
        if inline:
            answer = inline
        else:
            # The answer is the next non-blank line (unless that is another marker).
            while index < len(lines) and not lines[index]:
                index += 1
            if index < len(lines) and not _marker_answer(lines[index])[0]:
                answer = lines[index]
        break
    reasoning = len(steps)
    if answer is not None and steps:
        steps[-1] = f"{steps[-1]}\n\n{ANSWER_MARKER}\n\n{answer}"
    return ParsedSolution(steps=steps, answer=answer, reasoning_steps=reasoning)


def answer_complete(text: str) -> bool:
    """Has the text finished its answer line (so anything more would be dropped by
    `split_solution`)? Lets a sampler stop there instead of writing what nobody reads."""
    complete = text.replace("\r\n", "\n").split("\n")[:-1]  # the last line is still open
    for index, line in enumerate(complete):
        is_marker, inline = _marker_answer(line.strip())
        if not is_marker:
            continue
        if inline:
            return True
        return any(
            later.strip() and not _marker_answer(later.strip())[0]
            for later in complete[index + 1 :]
        )
    return False
