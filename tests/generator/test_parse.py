"""Splitting sampled text into the paper's steps, extracting and grading its final answer.

The inputs are shaped like what models write: SmolLM2's paragraphs, numbered steps, markdown
bold, GSM8K's `####`, answers followed by the next problem, `\\boxed{}` without a marker.
"""

from __future__ import annotations

import pytest

from labeling.grading import extract_final_answer, grade_answer
from training.generator import FewShotPrompt, GeneratorError, sample_seed, split_solution
from training.generator.parse import answer_complete


def test_paper_format_keeps_the_answer_block_with_the_last_step():
    text = (
        "The muffins cost $4 \\cdot 3 = 12$ dollars.\n"
        "Her change is $20 - 12 = 8$ dollars.\n\n# Answer\n\n8"
    )
    parsed = split_solution(text)
    assert parsed.steps == [
        "The muffins cost $4 \\cdot 3 = 12$ dollars.",
        "Her change is $20 - 12 = 8$ dollars.\n\n# Answer\n\n8",
    ]
    assert parsed.answer == "8" and parsed.reasoning_steps == 2 and not parsed.is_empty
    assert extract_final_answer(parsed.steps) == "8"


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        # Answer on the marker line, after a colon, in bold, as a list item.
        ("We add: $2 + 3 = 5$.\n# Answer: 5", "5"),
        ("We add: $2 + 3 = 5$.\n**# Answer:** **-3**", "-3"),
        ("- We add.\n- # Answer\n\n\\frac{1}{2}", "\\frac{1}{2}"),
        ("We add.\n## answer\n$\\sqrt{2}$", "$\\sqrt{2}$"),
        # GSM8K's final line.
        ("Natalia sold 48/2 = 24 clips in May.\n48 + 24 = 72\n#### 72", "72"),
        ("It costs 1,200 dollars in all.\n#### -1,200", "-1,200"),
        # Windows line ends.
        ("First step.\r\nSecond step.\r\n# Answer\r\n\r\n12", "12"),
    ],
)
def test_answer_markers(text, answer):
    parsed = split_solution(text)
    assert parsed.answer == answer
    assert parsed.steps[-1].endswith(f"\n\n# Answer\n\n{answer}")
    assert extract_final_answer(parsed.steps) == answer


def test_whatever_follows_the_answer_line_is_dropped():
    text = (
        "Step 1: $x + 1 = 15$, so $x = 14$.\n\n# Answer\n\n14\n\n"
        "I hope this helps! Let me know if you have other questions.\n"
        "Problem: What is 5 + 5?\nSolution:\n"
    )
    parsed = split_solution(text)
    assert parsed.steps == ["Step 1: $x + 1 = 15$, so $x = 14$.\n\n# Answer\n\n14"]


def test_smollm2_paragraphs_without_a_marker_have_no_answer():
    # Verbatim from SmolLM2-135M-Instruct at temperature 0.7 (default prompt, no forced answer).
    text = (
        "To find the value of $2+3$, we need to multiply the 2 by itself 3 times and then add 3 "
        "times the 3.\n\nThe process of adding fractions involves multiplying both the numerators "
        "(both the numerator 2s) and multiplying both the denominators.\n\n"
    )
    parsed = split_solution(text)
    assert parsed.reasoning_steps == 2 and parsed.answer is None
    assert extract_final_answer(parsed.steps) is None


def test_boxed_answer_without_marker_is_found_by_the_grader_extraction():
    parsed = split_solution("Since $3x = 18$, $x = 6$.\nSo $x = \\boxed{6}$.")
    assert parsed.answer is None and parsed.reasoning_steps == 2
    assert extract_final_answer(parsed.steps) == "6"


@pytest.mark.parametrize(
    "text",
    ["", "   \n\n  ", "# Answer\n\n5", "**# Answer**\n5", "#### 5"],
)
def test_no_reasoning_is_empty(text):
    assert split_solution(text).is_empty


@pytest.mark.parametrize(
    "text",
    [
        "We try $x = 2$.\n# Answer\n",  # marker, nothing after it
        "We try $x = 2$.\n# Answer\n\n# Answer\n3",  # a marker where the answer should be
        "### Step 1\nWe try $x = 2$.\n#### Step 2\nIt works.",  # markdown headings, no answer
    ],
)
def test_marker_without_answer_or_headings_give_no_answer(text):
    parsed = split_solution(text)
    assert parsed.answer is None
    assert extract_final_answer(parsed.steps) is None


@pytest.mark.parametrize(
    ("generated", "reference", "correct"),
    [
        ("Half of it.\n# Answer\n\n\\dfrac{1}{2}", "\\frac12", True),
        ("It is 1200.\n#### 1,200", "1200", True),
        ("Pay 8 dollars.\n# Answer: \\$8", "8", True),
        ("Angle is 30.\n# Answer\n\n30^\\circ", "30", True),
        ("Wrong turn.\n# Answer\n\n9", "8", False),
        ("Sign flips.\n#### -8", "8", False),
    ],
)
def test_generated_answers_are_graded_against_the_reference(generated, reference, correct):
    answer = extract_final_answer(split_solution(generated).steps)
    assert grade_answer(answer, reference) is correct


def test_prompt_forms_and_identity():
    prompt = FewShotPrompt()
    messages = prompt.messages("  What is 1 + 1?  ")
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 2 + ["user"]
    assert messages[-1]["content"] == "What is 1 + 1?"
    assert all("# Answer" in m["content"] for m in messages if m["role"] == "assistant")
    # Every worked example is itself in the paper's format.
    for _, solution in prompt.examples:
        assert split_solution(solution).answer is not None
    text = prompt.text("What is 1 + 1?")
    assert text.startswith(prompt.instruction) and text.endswith(
        "Problem: What is 1 + 1?\nSolution:\n"
    )
    other = FewShotPrompt.from_dict({"instruction": "Be brief.", "examples": []})
    assert other.sha256 != prompt.sha256
    assert FewShotPrompt.from_dict(prompt.as_dict()).sha256 == prompt.sha256


def test_prompt_errors_name_the_field(tmp_path):
    with pytest.raises(GeneratorError, match=r"examples\[0\]\.solution must be a string"):
        FewShotPrompt.from_dict({"examples": [{"problem": "p"}]})
    bad = tmp_path / "prompt.json"
    bad.write_text("{not json")
    with pytest.raises(GeneratorError, match="prompt.json: not JSON"):
        FewShotPrompt.from_file(bad)


def test_sample_seeds_depend_on_seed_problem_and_index():
    seeds = {sample_seed(s, p, i) for s in (0, 1) for p in ("a", "b") for i in range(3)}
    assert len(seeds) == 12
    assert sample_seed(0, "a", 1) == sample_seed(0, "a", 1)
    assert all(0 <= seed < 2**31 for seed in seeds)


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("Step.\n# Answer\n\n5", False),  # the answer line may still grow
        ("Step.\n# Answer\n\n5\n", True),
        ("Step.\n# Answer: 5\n", True),
        ("Step.\n#### 42\n", True),
        ("Step.\n# Answer\n\n", False),
        ("### Step 1\nWe start.\n", False),  # a heading is no marker
        ("Step.\n# Answer\n\n# Answer\n", False),
    ],
)
def test_answer_complete_says_when_the_parser_stops_reading(text, complete):
    assert answer_complete(text) is complete
    if complete:  # what the parser keeps does not change if the model writes on
        assert split_solution(text + "More words.\nProblem: next") == split_solution(text)
