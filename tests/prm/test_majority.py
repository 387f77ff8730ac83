"""Majority vote groups final answers by the grader's equivalence, not by their spelling."""

from __future__ import annotations

import subprocess
import sys

from training.prm.evaluate import Candidate, answer_classes, best_of_n


def test_equivalent_spellings_pool_their_votes():
    # Three samples reach 1/2, spelled three ways; two agree on a wrong 3.
    samples = [
        Candidate("\\frac{1}{2}", True, {"prm": 0.1}),
        Candidate("1/2", True, {"prm": 0.2}),
        Candidate("0.5", True, {"prm": 0.3}),
        Candidate("3", False, {"prm": 0.4}),
        Candidate("$3$", False, {"prm": 0.5}),
        Candidate(None, False, {"prm": 0.0}),
    ]
    assert answer_classes([c.answer for c in samples]) == [0, 0, 0, 1, 1, None]
    table = best_of_n([samples], ns=(6,), trials=1)
    assert table["majority"][6] == 1.0
    assert table["prm"][6] == 0.0
    # Compared as raw strings, "3"/"$3$" would split too: a five-way tie with 3 right answers.
    raw = best_of_n([samples], ns=(6,), trials=1, same_answer=lambda a, b: a == b)
    assert raw["majority"][6] == 3 / 5


def test_the_library_stays_free_of_django():
    code = (
        "import sys\n"
        "from training.prm.evaluate import Candidate, best_of_n\n"
        "best_of_n([[Candidate('1/2', True, {'prm': 1.0}), Candidate('0.5', True, {'prm': 0.0})]],"
        " ns=(2,), methods=['prm'])\n"
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
