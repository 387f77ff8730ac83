from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def write_jsonl(tmp_path):
    """Write records (dicts, or raw strings for broken lines) as a JSONL file."""
    counter = {"n": 0}

    def write(records: list, name: str | None = None) -> Path:
        counter["n"] += 1
        path = tmp_path / (name or f"file{counter['n']}.jsonl")
        with path.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(record if isinstance(record, str) else json.dumps(record))
                handle.write("\n")
        return path

    return write


@pytest.fixture
def prm800k_lines(shared_data) -> list[dict]:
    """The nine shared PRM800K sample lines (the phase 2 file repeats one openr line)."""
    lines = []
    for name in ("prm800k_sample_openr.jsonl", "prm800k_sample_phase2.jsonl"):
        with (shared_data / name).open(encoding="utf-8") as handle:
            lines += [json.loads(line) for line in handle if line.strip()]
    return lines
