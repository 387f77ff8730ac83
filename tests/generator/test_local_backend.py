"""The local backend on a tiny model built here (and briefly on the real SmolLM2 directory)."""

from __future__ import annotations

import pytest
import torch

from tests.generator.conftest import SMOLLM2_DIR
from training.generator import GeneratorError, SampleRequest, SamplingParams, build_backend
from training.generator.local import LocalCausalLM
from training.generator.prompt import FewShotPrompt

PROBLEMS = ["What is 3 + 4?", "Find x if 2x = 10, then add 1 to it."]


def _backend(path, **options) -> LocalCausalLM:
    return build_backend(
        "tiny", {"backend": "local", "model": str(path), **options}, FewShotPrompt()
    )


def test_each_sample_depends_on_its_seed_not_on_the_batch(tiny_generator):
    backend = _backend(tiny_generator, max_batch_rows=3)  # 5 rows: two batches
    params = SamplingParams(temperature=1.0, max_new_tokens=12)
    together = backend.sample(
        [SampleRequest(PROBLEMS[0], (11, 12, 13)), SampleRequest(PROBLEMS[1], (21, 22))], params
    )
    assert [len(c) for c in together] == [3, 2]
    texts = [c.text for c in together[0] + together[1]]
    assert len(set(texts)) == 5, texts  # different seeds, different samples
    alone = backend.sample([SampleRequest(PROBLEMS[1], (22,))], params)
    assert alone[0][0].text == together[1][1].text
    again = backend.sample([SampleRequest(PROBLEMS[0], (13, 11))], params)
    assert [c.text for c in again[0]] == [together[0][2].text, together[0][0].text]
    for completion in together[0] + together[1]:
        assert completion.completion_tokens <= 12
        assert completion.finish_reason in ("stop", "length")


def test_progress_is_reported_while_decoding(tiny_generator):
    backend = _backend(tiny_generator, max_batch_rows=2)
    seen: list[float] = []
    backend.sample(
        [SampleRequest(PROBLEMS[0], (1, 2, 3))], SamplingParams(max_new_tokens=6), seen.append
    )
    assert seen == sorted(seen) and len(seen) >= 6
    assert 0 < seen[0] <= 1 / 12 and seen[-1] <= 1.0


def test_greedy_matches_transformers_generate(tiny_generator):
    backend = _backend(tiny_generator)
    backend._load()
    params = SamplingParams(temperature=0.0, max_new_tokens=10)
    mine = backend.sample([SampleRequest(p, (0,)) for p in PROBLEMS], params)
    for problem, completions in zip(PROBLEMS, mine, strict=True):
        ids = backend.prompt_ids(problem)
        with torch.inference_mode():
            out = backend._model.generate(
                torch.tensor([ids]), do_sample=False, max_new_tokens=10, pad_token_id=0
            )
        expected = backend._tokenizer.decode(out[0][len(ids) :], skip_special_tokens=True)
        assert completions[0].text == expected


def test_prompts_share_the_few_shot_prefix_cache(tiny_generator):
    backend = _backend(tiny_generator)
    backend._load()
    prefix = backend._shared_prefix()
    # Everything up to the problem is shared: the instruction and both worked examples.
    assert len(prefix) > 0.8 * len(backend.prompt_ids("?"))
    for problem in PROBLEMS:
        assert backend.prompt_ids(problem)[: len(prefix)] == prefix


def test_stop_strings_cut_the_sample(tiny_generator):
    backend = _backend(tiny_generator)
    free = backend.sample([SampleRequest(PROBLEMS[0], (5,))], SamplingParams(max_new_tokens=24))
    text = free[0][0].text
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    assert stop.strip(), text
    cut = backend.sample(
        [SampleRequest(PROBLEMS[0], (5,))], SamplingParams(max_new_tokens=24, stop=(stop,))
    )[0][0]
    assert cut.text == text[: text.index(stop)]
    assert cut.finish_reason == "stop"


def test_forced_answer_appends_the_marker_and_an_answer(tiny_generator):
    backend = _backend(tiny_generator)
    params = SamplingParams(max_new_tokens=16, force_answer=True)
    free = backend.sample([SampleRequest(PROBLEMS[0], (7,))], SamplingParams(max_new_tokens=16))
    text = free[0][0].text
    # A stop string in the middle makes the sample end on its own, without a marker.
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    forced_params = SamplingParams(max_new_tokens=16, stop=(stop,), force_answer=True)
    forced = backend.sample([SampleRequest(PROBLEMS[0], (7,))], forced_params)[0][0]
    head, marker, answer = forced.text.partition("\n\n# Answer\n\n")
    assert marker and head == text[: text.index(stop)].rstrip()
    if answer:  # the model may write an empty answer line: then nothing is appended
        assert forced.extra["forced_answer"] is True and "\n" not in answer
    # A sample cut by the length limit is never forced.
    capped = backend.sample([SampleRequest(PROBLEMS[0], (7,))], params)[0][0]
    assert capped.finish_reason == "length" and "# Answer" not in capped.text


def test_chat_template_is_used_when_the_tokenizer_has_one(tiny_chat_generator, tiny_generator):
    chat = _backend(tiny_chat_generator)
    assert chat.chat
    rendered = chat._tokenizer.decode(chat.prompt_ids("What is 3 + 4?"))
    assert rendered.startswith("[system] Solve the math problem.")
    assert "[assistant] Four muffins cost" in rendered
    assert rendered.endswith("[user] What is 3 + 4?\n[assistant] ")
    plain = _backend(tiny_generator)
    assert not plain.chat
    assert plain._tokenizer.decode(plain.prompt_ids("What is 3 + 4?")).endswith(
        "Problem: What is 3 + 4?\nSolution:\n"
    )
    # Text prompts stop where the model would start the next problem.
    assert "\nProblem:" in plain.stop_strings(SamplingParams())


def test_bad_model_directory_is_refused(tmp_path):
    with pytest.raises(GeneratorError, match="is not a local model directory"):
        _backend(tmp_path / "missing")
    with pytest.raises(GeneratorError, match="backend must be one of local, openai"):
        build_backend("x", {"backend": "vllm"}, FewShotPrompt())


@pytest.mark.skipif(
    not SMOLLM2_DIR.is_dir(), reason="SmolLM2 not prepared (manage.py prepare_models)"
)
def test_smollm2_samples_batched_as_alone_and_greedy_as_generate():
    backend = _backend(SMOLLM2_DIR)
    backend._load()
    assert backend.chat  # an instruct model: its chat template is used
    params = SamplingParams(temperature=0.7, max_new_tokens=8)
    problem = "What is $2 + 3 \\cdot 4$?"
    together = backend.sample(
        [SampleRequest(problem, (1, 2)), SampleRequest("How many divisors does 12 have?", (3,))],
        params,
    )
    alone = backend.sample([SampleRequest(problem, (2,))], params)
    assert alone[0][0].text == together[0][1].text
    greedy = backend.sample([SampleRequest(problem, (0,))], SamplingParams(0.0, max_new_tokens=8))
    ids = backend.prompt_ids(problem)
    with torch.inference_mode():
        out = backend._model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=8)
    expected = backend._tokenizer.decode(out[0][len(ids) :], skip_special_tokens=True)
    assert greedy[0][0].text == expected and expected.strip()
