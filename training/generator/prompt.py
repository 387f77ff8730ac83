"""The few-shot prompt that asks for the paper's format: one step per line, then `# Answer`.

A prompt is an instruction plus worked examples. Chat models get it as messages (instruction as
the system turn, each example as a user/assistant pair); plain completion models get it as one
text with `Problem:` / `Solution:` headers. A prompt can be loaded from a JSON file:

    {"instruction": "...", "examples": [{"problem": "...", "solution": "..."}, ...]}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.generator.base import GeneratorError

ANSWER_MARKER = "# Answer"

DEFAULT_INSTRUCTION = (
    "Solve the math problem. Reason one step at a time and put each step on its own line. "
    "When you are done, write a line with `# Answer`, then the final answer alone on the next "
    "line, in its simplest form and without words."
)

# Written for this project: short, each step on its own line, the answer block as in PRM800K.
DEFAULT_EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "A bakery sells muffins at $3 each. Maria buys 4 muffins and pays with a $20 bill. "
        "How much change does she get, in dollars?",
        "Four muffins cost $4 \\cdot 3 = 12$ dollars.\n"
        "Her change is $20 - 12 = 8$ dollars.\n"
        "\n# Answer\n\n8",
    ),
    (
        "Find the value of $x$ for which $\\frac{x + 1}{3} = 5$.",
        "Multiplying both sides by 3 gives $x + 1 = 15$.\n"
        "Subtracting 1 from both sides gives $x = 14$.\n"
        "\n# Answer\n\n14",
    ),
)

# Plain-text prompts: a model that goes on past its answer starts the next problem; stop there.
TEXT_STOP = ("\nProblem:",)


@dataclass(frozen=True)
class FewShotPrompt:
    instruction: str = DEFAULT_INSTRUCTION
    examples: tuple[tuple[str, str], ...] = DEFAULT_EXAMPLES
    name: str = field(default="default", compare=False)

    @classmethod
    def from_file(cls, path: str | Path) -> FewShotPrompt:
        """Read a prompt from JSON; errors name the file and the field."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise GeneratorError(f"prompt file {path}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise GeneratorError(f"prompt file {path}: not JSON ({exc})") from exc
        return cls.from_dict(data, where=f"prompt file {path}", name=path.name)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "prompt", name: str = "custom") -> FewShotPrompt:
        if not isinstance(data, dict):
            raise GeneratorError(f"{where}: expected an object with instruction and examples")
        instruction = data.get("instruction", DEFAULT_INSTRUCTION)
        if not isinstance(instruction, str) or not instruction.strip():
            raise GeneratorError(f"{where}: instruction must be a non-empty string")
        raw_examples = data.get("examples", [])
        if not isinstance(raw_examples, list):
            raise GeneratorError(f"{where}: examples must be a list")
        examples = []
        for index, example in enumerate(raw_examples):
            if not isinstance(example, dict):
                raise GeneratorError(f"{where}: examples[{index}] must be an object")
            for key in ("problem", "solution"):
                if not isinstance(example.get(key), str) or not example[key].strip():
                    raise GeneratorError(f"{where}: examples[{index}].{key} must be a string")
            examples.append((example["problem"].strip(), example["solution"].strip()))
        return cls(instruction=instruction.strip(), examples=tuple(examples), name=name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "instruction": self.instruction,
            "examples": [{"problem": p, "solution": s} for p, s in self.examples],
        }

    @property
    def sha256(self) -> str:
        """Identifies the prompt's content (recorded with every sample it produced)."""
        payload = json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def messages(self, problem: str) -> list[dict[str, str]]:
        """Chat form: system instruction, one user/assistant pair per example, the problem."""
        messages = [{"role": "system", "content": self.instruction}]
        for example_problem, example_solution in self.examples:
            messages.append({"role": "user", "content": example_problem})
            messages.append({"role": "assistant", "content": example_solution})
        messages.append({"role": "user", "content": problem.strip()})
        return messages

    def text(self, problem: str) -> str:
        """Completion form: the instruction, the examples, then the problem's open solution."""
        parts = [self.instruction, ""]
        for example_problem, example_solution in self.examples:
            parts += [f"Problem: {example_problem}", "Solution:", example_solution, ""]
        parts += [f"Problem: {problem.strip()}", "Solution:", ""]
        return "\n".join(parts)
