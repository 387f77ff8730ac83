"""Which layer of a backbone says most about a step's correctness: a linear probe per layer.

    python benchmarks/probe_layers.py                 # SmolLM2, 240 ProcessBench GSM8K solutions
    python benchmarks/probe_layers.py --solutions 400 --threads 2

For each solution (up to and including its first wrong step, as the PRM trains), one forward pass
of the whole backbone in the reward model's input format; the hidden state at every step's
separator, after each layer, is a feature vector. A logistic regression per layer (standardised
features, C=0.05), 5-fold cross-validated by solution, predicts "the step is right"; the figure
is the out-of-fold step AUROC. It chose STEPWISE_TRAIN_DEFAULTS' `backbone_layers`: the features
are as good (or better) mid-depth as at the top, and every layer dropped is time saved.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from training.prm.backbones import default_model_dir, ensure_local_model  # noqa: E402
from training.prm.data import encode_solution  # noqa: E402
from training.prm.model import load_tokenizer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/processbench_gsm8k.json"))
    parser.add_argument("--model", default=None, help="backbone directory (default: SmolLM2)")
    parser.add_argument("--solutions", type=int, default=240)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from transformers import AutoModel

    path = args.model or str(
        ensure_local_model(
            default_model_dir(os.environ.get("STEPWISE_MODEL_DIR", ROOT / "var/models"))
        )
    )
    tokenizer = load_tokenizer(path)
    model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32).eval()
    model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    records = json.loads(Path(args.data).read_text())[: args.solutions]
    features: dict[int, list[np.ndarray]] = {}
    labels: list[int] = []
    groups: list[int] = []
    started = time.perf_counter()
    for index, record in enumerate(records):
        wrong = int(record["label"])
        kept = len(record["steps"]) if wrong < 0 else wrong + 1
        encoded = encode_solution(
            tokenizer, record["problem"], record["steps"][:kept], max_length=2048
        )
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(
                input_ids=torch.tensor([encoded.input_ids]),
                output_hidden_states=True,
                use_cache=False,
            )
        for layer, hidden in enumerate(out.hidden_states):
            features.setdefault(layer, []).append(hidden[0, encoded.step_ends].float().numpy())
        labels += [int(not (wrong >= 0 and j == wrong)) for j in range(len(encoded.step_ends))]
        groups += [index] * len(encoded.step_ends)
    seconds = time.perf_counter() - started
    y, g = np.array(labels), np.array(groups)
    print(
        f"{len(records)} solutions, {len(y)} steps ({int((y == 0).sum())} wrong), {seconds:.0f} s"
    )
    print("| layer | out-of-fold step AUROC |\n|---|---|")
    for layer in sorted(features):
        x = np.concatenate(features[layer])
        predicted = np.zeros(len(y))
        for train, test in GroupKFold(5).split(x, y, g):
            probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
            probe.fit(x[train], y[train])
            predicted[test] = probe.predict_proba(x[test])[:, 1]
        print(f"| {layer} | {roc_auc_score(y, predicted):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
