"""Import PRM800K lines with the importer, export them, get the same lines back (as JSON, with
the same key order at every level)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labeling.exports import iter_prm800k_lines
from labeling.imports import import_prm800k
from labeling.imports.prm800k.schema import shape_problems

pytestmark = pytest.mark.django_db

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"


def _same_with_key_order(left, right, path="$"):
    """Equal as JSON and, for every object, keys in the same order; types exactly equal (so
    1.0 and 1 differ)."""
    assert type(left) is type(right), f"{path}: {type(left).__name__} vs {type(right).__name__}"
    if isinstance(left, dict):
        assert list(left) == list(right), f"{path}: keys {list(left)} vs {list(right)}"
        for key in left:
            _same_with_key_order(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list):
        assert len(left) == len(right), f"{path}: length {len(left)} vs {len(right)}"
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            _same_with_key_order(a, b, f"{path}[{index}]")
    else:
        assert left == right, f"{path}: {left!r} vs {right!r}"


def _sample_files(shared_data: Path) -> list[Path]:
    files = sorted(shared_data.glob("prm800k_sample_*.jsonl"))
    reference = REFERENCE / "prm800k_example_line.jsonl"
    if reference.exists():
        files.append(reference)
    assert len(files) >= 2, "expected the shared PRM800K samples"
    return files


def test_every_shared_line_round_trips(shared_data, tmp_path):
    originals: dict[str, dict] = {}
    lines_read = 0
    for path in _sample_files(shared_data):
        import_prm800k(path)
        for text in path.read_text().splitlines():
            if text.strip():
                lines_read += 1
                # One phase 2 sample line is also in the openr sample: imported once.
                line = json.loads(text)
                originals.setdefault(json.dumps(line, sort_keys=True), line)
    texts = list(iter_prm800k_lines())
    # Byte for byte: the very lines that were read (each once).
    read_texts = {
        text for path in _sample_files(shared_data) for text in path.read_text().splitlines()
    }
    assert sorted(texts) == sorted(read_texts - {""})
    # Each written line is a PRM800K line by the declared schema, keys in its order.
    assert [shape_problems(text) for text in texts] == [[]] * len(texts)
    exported = [json.loads(x) for x in texts]
    assert lines_read == 10
    assert len(exported) == len(originals) == 9
    for index, (out, original) in enumerate(zip(exported, originals.values(), strict=True)):
        try:
            _same_with_key_order(out, original)
        except AssertionError as error:
            raise AssertionError(f"line {index} ({original['labeler']}): {error}") from None


def test_reimport_of_an_export_changes_nothing(shared_data, tmp_path):
    for path in _sample_files(shared_data):
        import_prm800k(path)
    first = tmp_path / "first.jsonl"
    first.write_text("".join(line + "\n" for line in iter_prm800k_lines()))
    import_prm800k(first)
    assert list(iter_prm800k_lines()) == first.read_text().splitlines()


def test_key_order_check_can_fail():
    with pytest.raises(AssertionError, match="keys"):
        _same_with_key_order({"a": 1, "b": 2}, {"b": 2, "a": 1})
    with pytest.raises(AssertionError, match="float vs int"):
        _same_with_key_order({"a": 1.0}, {"a": 1})


def test_the_schema_check_can_fail(prm800k_sample_line):
    line = json.loads(prm800k_sample_line)
    assert shape_problems(prm800k_sample_line) == []
    reordered = {"timestamp": line["timestamp"], **line}
    assert shape_problems(json.dumps(reordered)) == [f"$: keys {list(reordered)}"]
    line["label"]["steps"][0]["completions"][0]["rating"] = 2
    assert shape_problems(json.dumps(line)) == [
        "label.steps[0].completions[0].rating: must be -1, 0, 1 or null, got 2"
    ]


@pytest.fixture
def prm800k_sample_line(shared_data) -> str:
    with (shared_data / "prm800k_sample_openr.jsonl").open(encoding="utf-8") as handle:
        return handle.readline().rstrip("\n")


def test_stepwise_records_of_the_shared_lines_are_well_formed(shared_data):
    from labeling.exports import iter_stepwise_lines

    for path in _sample_files(shared_data):
        import_prm800k(path)
    records = [json.loads(x) for x in iter_stepwise_lines(include_unfinished=True)]
    paths = [json.loads(x) for x in iter_stepwise_lines(include_alternatives=False)]
    assert len(records) > len(paths) >= 5
    problems = {json.loads(x)["question"]["problem"] for x in iter_prm800k_lines()}
    assert len({record["id"] for record in records}) == len(records)
    for record in records:
        assert list(record) == ["id", "prompt", "completions", "labels"]
        assert record["prompt"] in problems
        assert len(record["completions"]) == len(record["labels"]) >= 1
        # Up to and including the first negative step: only the last label may be False.
        assert all(record["labels"][:-1])
