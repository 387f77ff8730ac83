"""Scoring throughput: one pass over each whole solution vs per-step scoring with a KV cache.

    python benchmarks/bench_scoring.py [--solutions 48] [--steps 10] [--repeats 3] [--threads 1]
    python benchmarks/bench_scoring.py --model var/models/smollm2-135m-instruct --solutions 16

Ours: `RewardModelScorer.step_probabilities`, one forward pass per length-grouped batch that reads
the head at every step separator.

Baselines, all reading the same head of the same model on the same token ids (`encode_solution`):
  * kv-batched (the strongest, the headline): what a careful user of the KV cache writes for a
    model read at the end of a prefix. Solutions grouped by length into batches like ours; the
    problems run once, then step k of every solution in the batch extends the cache in one
    forward (right-padded, the pads masked out of the cache by a 2D attention mask, positions
    continued per row), and the head is read at each row's last real token. Every real token is
    computed once, as in ours; it pays one forward per step instead of one per batch, the
    padding of each step and the cache's growth.
  * kv-single: the same, one solution at a time (no padding at all; one forward per step).
  * no-cache (reference, the old baseline): every prefix (problem, steps[:k+1]) scored from
    scratch in ours' batching; it computes ~(steps+1)/2 times as many tokens.
Fair batches: ours and kv-batched each try every `--budgets` batch size (tokens per forward) once
and then run at their own fastest. The script checks that every baseline gives the same
probabilities as ours (max |difference|). The sides take turns, starting one later each round;
each speed-up is the median over rounds of the per-round ratio, by wall time and by the
process's CPU time (with one thread, the work done; steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from training.prm.data import (  # noqa: E402
    encode_solution,
    length_grouped_batches,
    problem_grouped_batches,
)
from training.prm.model import new_reward_model  # noqa: E402
from training.prm.score import RewardModelScorer  # noqa: E402
from training.prm.synthetic import build_tiny_backbone, make_world  # noqa: E402

Probs = list[list[tuple[float, float, float]]]


def segments(scorer: RewardModelScorer, problem: str, steps: list[str]) -> list[list[int]]:
    """The token ids of one solution cut into [problem part, step 1, step 2, ...], each step
    ending at its separator: exactly the ids the one-pass scorer sees, in the order a cache
    would take them."""
    full = encode_solution(
        scorer.tokenizer,
        problem,
        steps,
        max_length=scorer.max_length,
        separator_id=scorer.separator_id,
    )
    if full.num_steps != len(steps):
        raise ValueError("a solution does not fit max_length; the baselines need whole solutions")
    problem_only = encode_solution(
        scorer.tokenizer,
        problem,
        [],
        max_length=scorer.max_length,
        separator_id=scorer.separator_id,
    )
    cuts = [len(problem_only.input_ids), *(end + 1 for end in full.step_ends)]
    ids = full.input_ids
    return [ids[: cuts[0]]] + [ids[cuts[k] : cuts[k + 1]] for k in range(len(steps))]


@torch.inference_mode()
def kv_cache_scores(
    scorer: RewardModelScorer, parts: list[list[list[int]]], *, budget: int, share: bool = False
) -> Probs:
    """Per-step probabilities by extending a KV cache one step at a time, a batch of solutions at a
    time (`budget` tokens, grouped by length like ours; budget 0 = one solution at a time).

    `share`: batches of whole problems, each problem run once and its cache copied to its
    solutions' rows (what a careful user does with several samples of one problem)."""
    from transformers import DynamicCache

    backbone, head, device = scorer.model.backbone, scorer.model.head, scorer.device
    lengths = [sum(len(p) for p in solution) for solution in parts]
    problems = [tuple(solution[0]) for solution in parts]
    if budget and share:
        # Whole problems per batch, so that a problem's solutions share its cache.
        groups = [
            b.indices
            for b in problem_grouped_batches(problems, lengths, batch_tokens=budget, seed=None)
        ]
    elif budget:
        groups = [
            b.indices for b in length_grouped_batches(lengths, batch_tokens=budget, seed=None)
        ]
    else:
        groups = [[i] for i in range(len(parts))]
    out: Probs = [[] for _ in parts]
    for group in groups:
        rows = len(group)
        cache = DynamicCache(config=backbone.config)
        seen = torch.zeros(rows, dtype=torch.long)  # real tokens per row so far (next position)
        mask = torch.zeros((rows, 0), dtype=torch.long)  # 1 = real token in the cache
        chunks = max(len(parts[i]) for i in group)
        distinct = list(dict.fromkeys(problems[i] for i in group)) if share else []
        if share and len(distinct) < rows:
            # The problems once: their cache rows, then one copy per solution (index_select).
            width = max(len(p) for p in distinct)
            ids = torch.full((len(distinct), width), scorer.pad_id, dtype=torch.long)
            real = torch.zeros((len(distinct), width), dtype=torch.long)
            for row, problem in enumerate(distinct):
                ids[row, : len(problem)] = torch.tensor(problem, dtype=torch.long)
                real[row, : len(problem)] = 1
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=scorer.bf16):
                backbone(
                    input_ids=ids.to(device),
                    attention_mask=real.to(device) if len(distinct) > 1 else None,
                    cache=cache,
                    use_cache=True,
                )
            where = torch.tensor([distinct.index(problems[i]) for i in group])
            cache.reorder_cache(where.to(device))
            mask = real[where]
            seen = mask.sum(dim=1)
        for k in range(1 if mask.shape[1] else 0, chunks):  # chunk 0: the problem; k: step k
            pieces = [parts[i][k] if k < len(parts[i]) else [] for i in group]
            width = max(1, max(len(p) for p in pieces))
            ids = torch.full((rows, width), scorer.pad_id, dtype=torch.long)
            real = torch.zeros((rows, width), dtype=torch.long)
            for row, piece in enumerate(pieces):
                ids[row, : len(piece)] = torch.tensor(piece, dtype=torch.long)
                real[row, : len(piece)] = 1
            positions = seen[:, None] + torch.arange(width)[None, :]
            mask = torch.cat([mask, real], dim=1)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=scorer.bf16):
                hidden = backbone(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device) if rows > 1 else None,
                    position_ids=positions.to(device),
                    cache=cache,
                    use_cache=True,
                ).last_hidden_state
                if k == 0:
                    seen += real.sum(dim=1)
                    continue
                ends = real.sum(dim=1) - 1
                have = (ends >= 0).nonzero().flatten()
                logits = head(hidden[have.to(device), ends[have].to(device)]).float()
            probs = torch.softmax(logits, dim=-1).cpu().tolist()
            for row, p in zip(have.tolist(), probs, strict=True):
                out[group[row]].append(tuple(p))
            seen += real.sum(dim=1)
    return out


def computed_tokens(scorer: RewardModelScorer, items, budget: int) -> int:
    """Tokens ours runs through the model: the packed rows' lengths (a problem shared by its
    solutions in a batch counted once)."""
    encoded = [scorer.encode(p, steps) for p, steps in items]
    lengths = [len(e.input_ids) for e in encoded]
    problems = [tuple(e.input_ids[: e.prefix_length]) for e in encoded]
    batches = problem_grouped_batches(
        problems, lengths, batch_tokens=max(budget, scorer.max_length), seed=None
    )
    total = 0
    for batch in batches:
        seen: set = set()
        for i in batch.indices:
            shared = problems[i] in seen
            total += lengths[i] - (len(problems[i]) if shared else 0)
            seen.add(problems[i])
    return total


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--solutions", type=int, default=48)
    parser.add_argument("--steps", type=int, default=10, help="steps per solution")
    parser.add_argument(
        "--per-problem",
        type=int,
        default=1,
        help="solutions per problem (best-of-N style); above 1, kv-batched shares each "
        "problem's cache over its solutions",
    )
    parser.add_argument("--repeats", type=int, default=3, help="rounds, sides taking turns")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--model", help="local HF model directory instead of the tiny Llama")
    parser.add_argument(
        "--budgets",
        default="1024,2048,4096,16384",
        help="batch_tokens tried for ours and kv-batched; each side runs at its fastest",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-cache-baseline", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # Every solution has exactly --steps steps (ratings do not matter for scoring).
    ops = args.steps - 2  # an opening, one step per operation, the final answer
    per = max(1, args.per_problem)
    world = make_world(-(-args.solutions // per), per, seed=7, min_ops=ops, max_ops=ops)
    items = [(s.problem, s.steps[: args.steps]) for s in world if len(s.steps) >= args.steps]
    items = items[: args.solutions]
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            backbone, model_name = args.model, Path(args.model).name
        else:
            backbone = build_tiny_backbone(
                f"{tmp}/backbone", hidden_size=args.hidden, num_layers=args.layers
            )
            model_name = f"llama hidden {args.hidden} x {args.layers} layers"
        model, tokenizer = new_reward_model(backbone, seed=0)
    # max_length only needs to hold the longest solution; the scorer never batches below it.
    scorer = RewardModelScorer(model, tokenizer, max_length=1024, device=args.device)
    parts = [segments(scorer, p, steps) for p, steps in items]
    prefixes = [(p, steps[: k + 1]) for p, steps in items for k in range(len(steps))]
    cuda = args.device.startswith("cuda")

    def timed(fn) -> tuple[Probs, float, float]:
        """(result, wall seconds, CPU seconds of this process)."""
        started, cpu = time.perf_counter(), time.process_time()
        result = fn()
        if cuda:
            torch.cuda.synchronize()
        return result, time.perf_counter() - started, time.process_time() - cpu

    def no_cache(budget: int) -> Probs:
        last = [p[-1] for p in scorer.step_probabilities(prefixes, batch_tokens=budget)]
        out, cursor = [], 0
        for _, steps in items:
            out.append(last[cursor : cursor + len(steps)])
            cursor += len(steps)
        return out

    share = per > 1
    padded = RewardModelScorer(model, tokenizer, max_length=1024, device=args.device, packed=False)
    batched = {
        "ours": lambda b: scorer.step_probabilities(items, batch_tokens=b),
        "ours-padded": lambda b: padded.step_probabilities(items, batch_tokens=b),
        "kv-batched": lambda b: kv_cache_scores(scorer, parts, budget=b, share=share),
    }
    # Each batched side gets its own fastest batch size (on a CPU small batches win: their
    # activations stay in cache); one warm-up, then one timed call per budget.
    budgets = [int(b) for b in args.budgets.split(",")]
    best: dict[str, int] = {}
    for name, fn in batched.items():
        fn(budgets[0])
        trial = {b: timed(lambda fn=fn, b=b: fn(b))[1 if cuda else 2] for b in budgets}
        best[name] = min(trial, key=trial.get)
        print(
            f"{name} batch_tokens sweep ({'wall' if cuda else 'CPU'} s): "
            + ", ".join(f"{b}: {t:.3f}" for b, t in trial.items())
            + f" -> {best[name]}",
            flush=True,
        )
    sides = {
        "ours": lambda: batched["ours"](best["ours"]),
        "ours-padded": lambda: batched["ours-padded"](best["ours-padded"]),
        "kv-batched": lambda: batched["kv-batched"](best["kv-batched"]),
        "kv-single": lambda: kv_cache_scores(scorer, parts, budget=0),
    }
    if args.no_cache_baseline:
        sides["no-cache"] = lambda: no_cache(best["ours"])
    for fn in sides.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in sides}
    cpu_times: dict[str, list[float]] = {name: [] for name in sides}
    results: dict[str, Probs] = {}
    names = list(sides)
    for repeat in range(args.repeats):  # the sides take turns, starting one later each round
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            results[name], wall, cpu = timed(sides[name])
            times[name].append(wall)
            cpu_times[name].append(cpu)
    n = len(items)
    tokens = sum(sum(len(p) for p in solution) for solution in parts)
    print(
        f"model: {model_name}; solutions={n} ({per} per problem) steps/solution={args.steps} "
        f"tokens={tokens} (ours computes {computed_tokens(scorer, items, best['ours'])}) "
        f"threads={args.threads} device={args.device}"
    )
    for name in names:
        worst = max(
            abs(a - b)
            for x, y in zip(results["ours"], results[name], strict=True)
            for px, py in zip(x, y, strict=True)
            for a, b in zip(px, py, strict=True)
        )
        t = statistics.median(times[name])
        ratios = [b / o for b, o in zip(times[name], times["ours"], strict=True)]
        cpu_ratios = [b / o for b, o in zip(cpu_times[name], cpu_times["ours"], strict=True)]
        print(
            f"{name:10s}: {n / t:7.1f} solutions/s (wall {t:.3f} s, CPU "
            f"{statistics.median(cpu_times[name]):.3f} s, medians of {args.repeats}); "
            f"ours {statistics.median(ratios):.2f}x faster by wall time "
            f"({', '.join(f'{r:.2f}' for r in ratios)}), {statistics.median(cpu_ratios):.2f}x "
            f"by CPU time ({', '.join(f'{r:.2f}' for r in cpu_ratios)}); "
            f"max |p - p_ours| = {worst:.1e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
