"""``manage.py create_phase1_round``: a phase-1 (interactive) round over some problems."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from labeling.models import Problem


class Command(BaseCommand):
    help = (
        "Create a phase-1 round: labelers steer the generator step by step at /label/interactive/ "
        "(see docs/phase1.md)."
    )

    def add_arguments(self, parser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--problem-ids", help="comma-separated problem ids")
        which.add_argument("--limit", type=int, help="the first N problems by id")
        parser.add_argument("--split", default="", help="with --limit: only this split")
        parser.add_argument("--generator", help="a configured generator (default: the default)")
        parser.add_argument("--k", type=int, default=4, help="candidates per step (4)")
        parser.add_argument("--labelings", type=int, default=1, help="labelings per problem (1)")
        parser.add_argument("--temperature", type=float, default=0.7)
        parser.add_argument("--top-p", type=float, default=1.0)
        parser.add_argument("--max-new-tokens", type=int, default=128, help="per step (128)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options) -> None:
        from training.phase1.services import phase1_round_create
        from training.sampling import default_generator

        if options["problem_ids"]:
            try:
                ids = [int(x) for x in options["problem_ids"].split(",") if x.strip()]
            except ValueError as exc:
                raise CommandError("--problem-ids: give whole numbers separated by commas") from exc
        else:
            problems = Problem.objects.order_by("id")
            if options["split"]:
                problems = problems.filter(split=options["split"])
            ids = list(problems.values_list("id", flat=True)[: options["limit"]])
        try:
            generation = phase1_round_create(
                problem_ids=ids,
                generator=options["generator"] or default_generator(),
                k=options["k"],
                labelings_per_problem=options["labelings"],
                temperature=options["temperature"],
                top_p=options["top_p"],
                max_new_tokens=options["max_new_tokens"],
                seed=options["seed"],
            )
        except ValidationError as exc:
            lines = [f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()]
            raise CommandError("\n".join(lines)) from exc
        self.stdout.write(
            f"phase-1 round {generation.number}: {len(ids)} problems, "
            f"K={options['k']}, {options['labelings']} labeling(s) each"
        )
