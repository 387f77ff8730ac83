"""Sample candidate solutions from a generator into the pool.

python manage.py generate_solutions --samples N [--problems-file F | --split S] [--limit M]
    [--generator NAME] [--temperature T] [--top-p P] [--max-new-tokens K] [--seed S]
    [--prompt-file F.json] [--async]

Runs here with a progress bar (the run is recorded, so the console shows it too), or with
--async on the gpu queue's worker. Asking again for the same thing creates nothing new.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from training import sampling
from training.generator import FewShotPrompt, GeneratorError
from training.management.commands._progress import ProgressBar
from training.models import SamplingRun


class Command(BaseCommand):
    help = "Sample N solutions per problem from a generator; graded, de-duplicated, stored."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--samples", type=int, required=True, help="Samples per problem.")
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--problems-file", help="MATH-style JSONL; its problems are imported when new."
        )
        which.add_argument("--split", help="Only problems of this split (e.g. test).")
        parser.add_argument("--limit", type=int, help="At most this many problems (first by id).")
        parser.add_argument(
            "--generator", help=f"A configured generator (default {sampling.default_generator()})."
        )
        parser.add_argument("--temperature", type=float)
        parser.add_argument("--top-p", type=float)
        parser.add_argument("--max-new-tokens", type=int)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--prompt-file", help='Few-shot prompt JSON: {"instruction": ..., "examples": [...]}.'
        )
        parser.add_argument(
            "--async", dest="run_async", action="store_true", help="Queue it for the gpu worker."
        )

    def handle(self, *args, **options) -> None:
        try:
            prompt = (
                FewShotPrompt.from_file(options["prompt_file"]) if options["prompt_file"] else None
            )
            run, created = sampling.sampling_run_start(
                samples=options["samples"],
                generator=options["generator"],
                temperature=options["temperature"],
                top_p=options["top_p"],
                max_new_tokens=options["max_new_tokens"],
                seed=options["seed"],
                split=options["split"],
                limit=options["limit"],
                problems_file=options["problems_file"],
                prompt=prompt,
                enqueue=options["run_async"],
            )
        except ValidationError as exc:
            raise CommandError(_field_errors(exc)) from exc
        except (GeneratorError, sampling.SamplingError) as exc:
            raise CommandError(str(exc)) from exc
        problems = len(run.params["problem_ids"])
        if not created:
            self.stdout.write(
                f"sampling run {run.id} has this request already ({run.state}): nothing new"
            )
            self._summary(run)
            return
        self.stdout.write(
            f"sampling run {run.id}: {run.params['samples']} samples for each of {problems} "
            f"problems with {run.generator}"
        )
        if options["run_async"]:
            self.stdout.write(
                f"queued on the gpu queue; follow it at /api/training/sampling-runs/{run.id}/"
            )
            return
        bar = ProgressBar(f"sample with {run.generator}", disable=options["verbosity"] == 0)
        try:
            sampling.sampling_run_execute(run_id=run.id, echo=bar)
        finally:
            bar.close()
        run.refresh_from_db()
        if run.state != SamplingRun.State.SUCCEEDED:
            raise CommandError(f"sampling run {run.id} {run.state}: {run.error}")
        self._summary(run)

    def _summary(self, run: SamplingRun) -> None:
        counts = run.counts
        self.stdout.write(
            f"requested {counts.get('requested', 0)}: kept {counts.get('kept', 0)} "
            f"(correct {counts.get('correct', 0)}, wrong {counts.get('wrong', 0)}, "
            f"ungraded {counts.get('ungraded', 0)}); duplicates {counts.get('duplicates', 0)}, "
            f"no answer {counts.get('no_answer', 0)} ({counts.get('truncated', 0)} cut at the "
            f"token limit), empty {counts.get('empty', 0)}, "
            f"sampled before {counts.get('already_sampled', 0)}"
        )


def _field_errors(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)
