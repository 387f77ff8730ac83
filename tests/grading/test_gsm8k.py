"""GSM8K's `#### 42` final-answer line, in reference solutions and in model solutions."""

from __future__ import annotations

import pytest

from labeling.grading import extract_final_answer, grade_answer, same_answer

# GSM8K's own answer field: the worked solution with calculator annotations, then "#### 72".
REFERENCE = (
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n"
    "#### 72"
)
MODEL_STEPS = [
    "In April Natalia sold 48 clips.",
    "In May she sold half as many, 48 / 2 = 24 clips.",
    "Altogether she sold 48 + 24 = 72 clips.\n#### 72",
]


def test_the_gsm8k_answer_line_is_the_final_answer():
    assert extract_final_answer(MODEL_STEPS) == "72"
    assert extract_final_answer([REFERENCE]) == "72"
    # The marker may sit alone in the last step, and its line may carry a currency or separators.
    assert extract_final_answer(["He pays 3 * 360 = $1,080 in total.", "#### $1,080"]) == "$1,080"
    assert extract_final_answer(["So the answer is 18.", "#### The answer is: 18"]) == "18"


def test_gsm8k_answers_grade_against_plain_and_gsm8k_references():
    assert grade_answer(extract_final_answer(MODEL_STEPS), "72")
    # A problem imported straight from GSM8K keeps the whole answer field as its reference.
    assert grade_answer(extract_final_answer(MODEL_STEPS), REFERENCE)
    assert grade_answer("#### 72", REFERENCE)
    assert grade_answer(extract_final_answer(["Total: $1,080.", "#### $1,080"]), "1080")
    assert grade_answer("#### 18.00", "18")
    assert not grade_answer(extract_final_answer(["48 + 23 = 71.\n#### 71"]), REFERENCE)
    assert same_answer("#### 1,080", "1080")


@pytest.mark.parametrize(
    "steps, expected",
    [
        # Markdown headings are not answers: the boxed answer after them is.
        (["#### Step 1: Count the clips", "48 + 24 = 72, so \\boxed{72}."], "72"),
        (["#### Final Answer", "The answer is \\boxed{72}."], "72"),
        # The later of a boxed answer and a GSM8K line wins.
        (["So far \\boxed{24} in May.", "#### 72"], "72"),
        (["#### 24", "Adding April: \\boxed{72}"], "72"),
        # The PRM800K "# Answer" block still comes first.
        (["48 + 24 = 72.\n\n# Answer\n\n72"], "72"),
        (["#### Step 2: Add them up", "So she sold 72 clips."], None),
    ],
)
def test_headings_and_other_markers(steps, expected):
    assert extract_final_answer(steps) == expected
