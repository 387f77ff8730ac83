"""PRM800K export on hand-made rows: exact line shape, filters, streaming."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import connection

from labeling.exports import iter_prm800k_lines
from labeling.imports.prm800k.schema import shape_problems
from tests.exports import factories as f

pytestmark = pytest.mark.django_db

T0 = datetime(2023, 1, 22, 4, 34, 27, 52924, tzinfo=UTC)


def _world():
    alice, bob = f.labeler("alice"), f.labeler("bob")
    g1, g2 = f.generation(1), f.generation(2)
    sol = f.solution(["Add one and one.", "So $1+1=2$.\n\n# Answer\n\n2"])
    two_steps = [
        {"completions": [("Add one and one.", 1)], "chosen": 0},
        {"completions": [("So $1+1=2$.\n\n# Answer\n\n2", 1)], "chosen": 0},
    ]
    made = {
        "a1": f.labeling(by=alice, of=sol, steps=two_steps, timestamp=T0, gen=g1),
        "b1": f.labeling(
            by=bob, of=sol, steps=two_steps, timestamp=T0.replace(day=23), gen=g1, qc=True
        ),
        "a2": f.labeling(by=alice, of=sol, steps=two_steps, timestamp=T0.replace(day=24), gen=g2),
        "b2": f.labeling(
            by=bob,
            of=sol,
            steps=two_steps,
            timestamp=T0.replace(day=25, microsecond=0),
            gen=f.generation(-1),
            screening=True,
        ),
    }
    return made


def _lines(**filters) -> list[dict]:
    return [json.loads(line) for line in iter_prm800k_lines(**filters)]


def test_line_has_the_prm800k_shape_and_key_order():
    made = _world()
    line = next(iter_prm800k_lines())
    pseudonym = made["a1"].labeler.pseudonym
    assert line == (
        f'{{"labeler": "{pseudonym}", "timestamp": "2023-01-22T04:34:27.052924", "generation": 1, '
        '"is_quality_control_question": false, "is_initial_screening_question": false, '
        '"question": {"problem": "What is $1+1$?", "ground_truth_solution": "1+1=2", '
        '"ground_truth_answer": "2", "pre_generated_steps": ["Add one and one.", '
        '"So $1+1=2$.\\n\\n# Answer\\n\\n2"], "pre_generated_answer": "2", '
        '"pre_generated_verifier_score": 0.5}, "label": {"steps": [{"completions": '
        '[{"text": "Add one and one.", "rating": 1, "flagged": null}], "human_completion": null, '
        '"chosen_completion": 0}, {"completions": [{"text": "So $1+1=2$.\\n\\n# Answer\\n\\n2", '
        '"rating": 1, "flagged": null}], "human_completion": null, "chosen_completion": 0}], '
        '"total_time": 1234, "finish_reason": "solution"}}'
    )
    # Python writes the same text for the parsed object: the separators match json.dumps.
    assert json.dumps(json.loads(line)) == line
    # Every line written is a PRM800K line by the declared schema (types, bounds, key order).
    assert all(shape_problems(text) == [] for text in iter_prm800k_lines())


def test_whole_seconds_have_no_fraction_like_isoformat():
    _world()
    last = _lines()[-1]
    assert last["timestamp"] == "2023-01-25T04:34:27"
    assert last["generation"] == -1 and last["is_initial_screening_question"] is True


def test_filters():
    _world()
    everyone = _lines()
    assert [(f.who(x["labeler"]), x["generation"]) for x in everyone] == [
        ("alice", 1),
        ("bob", 1),
        ("alice", 2),
        ("bob", -1),
    ]
    assert [f.who(x["labeler"]) for x in _lines(generation=1)] == ["alice", "bob"]
    assert [x["generation"] for x in _lines(labeler="alice")] == [1, 2]
    # An admin may name the labeler by the exported id as well as by username.
    alice_id = everyone[0]["labeler"]
    assert [x["generation"] for x in _lines(labeler=alice_id)] == [1, 2]
    assert _lines(labeler="nobody") == []
    # since inclusive, until exclusive; naive datetimes are UTC.
    window = {"since": T0.replace(day=23), "until": T0.replace(day=25, microsecond=0)}
    days = [x["timestamp"][:10] for x in _lines(**window)]
    assert days == ["2023-01-23", "2023-01-24"]
    naive = T0.replace(day=24, tzinfo=None)
    assert [x["timestamp"][:10] for x in _lines(since=naive)] == ["2023-01-24", "2023-01-25"]
    assert [f.who(x["labeler"]) for x in _lines(include_qc=False)] == ["alice", "alice", "bob"]
    assert [x["generation"] for x in _lines(include_screening=False)] == [1, 1, 2]
    assert len(_lines(include_qc=False, include_screening=False, generation=1)) == 1


def test_phase1_null_completions_and_human_completion():
    from labeling.models import LabeledStep

    sol = f.solution(["Try $x=1$."])
    sol.is_pre_generated = False
    sol.save()
    made = f.labeling(
        by=f.labeler("carol"),
        of=sol,
        steps=[{"completions": [("Try $x=1$.", -1), ("Try $x=2$.", None)], "chosen": None}],
        timestamp=T0,
        finish_reason="give_up",
    )
    step = made.steps.get()
    step.has_human_completion = True
    step.human_completion_text = "Try $x=0$ — zero."
    step.human_completion_source = "human"
    step.human_completion_flagged = False
    step.save()
    LabeledStep.objects.create(labeling=made, position=1, completions_null=True)
    line = next(iter_prm800k_lines())
    parsed = json.loads(line)
    assert parsed["generation"] is None
    assert list(parsed["question"]) == ["problem", "ground_truth_answer"]
    assert parsed["label"]["steps"] == [
        {
            "completions": [
                {"text": "Try $x=1$.", "rating": -1, "flagged": None},
                {"text": "Try $x=2$.", "rating": None, "flagged": None},
            ],
            "human_completion": {
                "text": "Try $x=0$ — zero.",
                "rating": None,
                "source": "human",
                "flagged": False,
            },
            "chosen_completion": None,
        },
        {"completions": None, "human_completion": None, "chosen_completion": None},
    ]


@pytest.mark.parametrize("score", [1.0, 0.010779580529581414, 1e-05, 2.5e-300, 123456789.0])
def test_scores_come_back_as_the_same_double(score):
    sol = f.solution(["x"])
    sol.selection_score = score
    sol.save()
    f.labeling(by=f.labeler("dan"), of=sol, steps=[], timestamp=T0)
    text = next(iter_prm800k_lines())
    value = json.loads(text)["question"]["pre_generated_verifier_score"]
    assert type(value) is float and value == score


def test_reads_through_a_server_side_cursor_in_batches():
    for i in range(5):
        f.labeling(by=f.labeler(f"l{i}"), of=f.solution([f"s{i}"]), steps=[], timestamp=T0)
    lines = iter_prm800k_lines(batch_size=2)
    first = next(lines)
    assert f.who(json.loads(first)["labeler"]) == "l0"
    # While the export is under way, Postgres holds its named cursor: rows are fetched from
    # the server in batches, not all at once into this process.
    with connection.cursor() as cur:
        cur.execute("SELECT name, statement FROM pg_cursors")
        cursors = cur.fetchall()
    assert len(cursors) == 1 and cursors[0][0].startswith("stepwise_export_")
    assert len(list(lines)) == 4
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_cursors")
        assert cur.fetchone()[0] == 0


def test_an_abandoned_export_releases_its_cursor():
    for i in range(3):
        f.labeling(by=f.labeler(f"m{i}"), of=f.solution([f"t{i}"]), steps=[], timestamp=T0)
    lines = iter_prm800k_lines(batch_size=1)
    next(lines)
    lines.close()  # e.g. the client hung up mid-download
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_cursors")
        assert cur.fetchone()[0] == 0
    assert len(list(iter_prm800k_lines())) == 3


def test_labeler_is_a_pseudonym_kept_across_exports_never_the_username():
    made = _world()
    first = [x["labeler"] for x in _lines()]
    # A new labeler and more work in between change nothing for the others.
    f.labeling(by=f.labeler("erin"), of=f.solution(["z"]), steps=[], timestamp=T0)
    second = [x["labeler"] for x in _lines()]
    assert second[:4] == first
    alice, bob = made["a1"].labeler, made["b1"].labeler
    assert first == [str(alice.pseudonym), str(bob.pseudonym)] * 2
    assert alice.pseudonym != bob.pseudonym
    assert all(name not in "".join(iter_prm800k_lines()) for name in ("alice", "bob", "erin"))


def test_an_imported_labeler_keeps_their_prm800k_id():
    person = f.labeler("340d89bc-f5b7-45e9-b272-909ba68ee363")
    person.external_id = "340d89bc-f5b7-45e9-b272-909ba68ee363"
    person.save()
    f.labeling(by=person, of=f.solution(["x"]), steps=[], timestamp=T0)
    assert [x["labeler"] for x in _lines()] == ["340d89bc-f5b7-45e9-b272-909ba68ee363"]


def test_file_names_say_what_the_file_holds():
    from labeling.exports import ExportFilter, export_filename

    _world()
    assert export_filename("prm800k", ExportFilter()) == (
        "prm800k_all-rounds_2023-01-22_to_2023-01-25.jsonl"
    )
    assert export_filename("prm800k", ExportFilter(generation=2)) == (
        "prm800k_round-2_2023-01-24.jsonl"
    )
    assert export_filename("stepwise", ExportFilter(generation=-1, include_qc=False)) == (
        "stepwise_screening_2023-01-25_no-qc.jsonl"
    )
    assert export_filename("prm800k", ExportFilter(generation=7)) == "prm800k_round-7_empty.jsonl"
    odd = export_filename("prm800k", ExportFilter(labeler='a"b/../c d'))
    assert odd == "prm800k_all-rounds_labeler-a-b-..-c-d_empty.jsonl"
