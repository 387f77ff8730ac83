"""The phase-1 (interactive) API, under /api/labeling/phase1/ (client: frontend/src/interactive.ts).

Heartbeat and draft use the phase-2 endpoints (``assignments/<id>/heartbeat/``, ``draft/``):
the lease is the same object. Errors are phase 2's: 400 per field, 403, 404, 409 ``lease_lost``;
423 ``other_mode_open`` when the labeler's open lease belongs to the other page.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import services as labeling_services
from labeling.apis import LEASE_LOST, LabelingApi
from labeling.permissions import IsStepwiseAdmin
from training.generator import GeneratorError
from training.phase1 import selectors, services

OTHER_MODE = OpenApiResponse(description="other_mode_open: the open lease is a phase-2 task")


class Phase1Api(LabelingApi):
    def handle_exception(self, exc):
        if isinstance(exc, services.NotPhase1):
            return Response(
                {
                    "detail": "This task belongs to the phase-2 workspace (/label/).",
                    "code": "other_mode_open",
                },
                status=status.HTTP_423_LOCKED,
            )
        if isinstance(exc, GeneratorError):
            return Response(
                {"detail": f"The generator failed: {exc}", "code": "generator_error"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return super().handle_exception(exc)


# ---------------------------------------------------------------- serializers


class Phase1CandidateOutput(serializers.Serializer):
    index = serializers.IntegerField()
    text = serializers.CharField()
    ends_solution = serializers.BooleanField()


class Phase1CurrentOutput(serializers.Serializer):
    position = serializers.IntegerField()
    candidates = Phase1CandidateOutput(many=True)
    elapsed_ms = serializers.IntegerField()


class RatedCandidateOutput(serializers.Serializer):
    text = serializers.CharField()
    rating = serializers.IntegerField(allow_null=True)
    flagged = serializers.BooleanField()


class DecidedStepOutput(serializers.Serializer):
    position = serializers.IntegerField()
    text = serializers.CharField()
    written = serializers.BooleanField()
    chosen = serializers.IntegerField(allow_null=True)
    candidates = RatedCandidateOutput(many=True)


class Phase1ProblemOutput(serializers.Serializer):
    text = serializers.CharField()
    reference_answer = serializers.CharField(allow_blank=True)


class Phase1DraftOutput(serializers.Serializer):
    state = serializers.JSONField()
    active_ms = serializers.IntegerField()
    saved_at = serializers.DateTimeField()


class TrajectoryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    lease_expires_at = serializers.DateTimeField()
    problem = Phase1ProblemOutput()
    k = serializers.IntegerField()
    steps = DecidedStepOutput(many=True)
    current = Phase1CurrentOutput(allow_null=True)
    draft = Phase1DraftOutput(allow_null=True)
    active_ms = serializers.IntegerField()
    labeling_id = serializers.IntegerField(allow_null=True)
    finish_reason = serializers.CharField(allow_null=True)


class TrajectoryEnvelope(serializers.Serializer):
    assignment = TrajectoryOutput()
    finished = serializers.BooleanField(required=False)


def _rating_list():
    return serializers.ListField(
        child=serializers.IntegerField(min_value=-1, max_value=1, allow_null=True),
        max_length=services.MAX_K,
    )


class Phase1StepInput(serializers.Serializer):
    position = serializers.IntegerField(min_value=0)
    ratings = _rating_list()
    flags = serializers.ListField(child=serializers.BooleanField(), max_length=services.MAX_K)
    chosen = serializers.IntegerField(min_value=0, allow_null=True, required=False, default=None)
    human_text = serializers.CharField(
        allow_null=True, required=False, default=None, allow_blank=True, trim_whitespace=False
    )
    human_flagged = serializers.BooleanField(required=False, default=False)
    total_time_ms = serializers.IntegerField(min_value=0)


class PrefetchInput(serializers.Serializer):
    position = serializers.IntegerField(min_value=0)
    candidate = serializers.IntegerField(min_value=0)


class PrefetchOutput(serializers.Serializer):
    ready = serializers.BooleanField()
    position = serializers.IntegerField(allow_null=True)
    elapsed_ms = serializers.IntegerField(allow_null=True)


class Phase1UndoInput(serializers.Serializer):
    position = serializers.IntegerField(min_value=0)


class Phase1EndInput(serializers.Serializer):
    finish_reason = serializers.ChoiceField(choices=["give_up", "bad_problem"])
    reason = serializers.CharField(allow_blank=True, max_length=10000)
    position = serializers.IntegerField(min_value=0)
    ratings = _rating_list()
    flags = serializers.ListField(child=serializers.BooleanField(), max_length=services.MAX_K)
    total_time_ms = serializers.IntegerField(min_value=0)


class Phase1EndOutput(serializers.Serializer):
    labeling_id = serializers.IntegerField()
    finish_reason = serializers.CharField()


def _envelope(trajectory: services.Trajectory, finished: bool | None = None) -> dict:
    body: dict = {"assignment": selectors.trajectory_payload(trajectory)}
    if finished is not None:
        body["finished"] = finished
    return TrajectoryEnvelope(body).data


# ---------------------------------------------------------------- labeler endpoints


class Phase1ClaimApi(Phase1Api):
    @extend_schema(
        request=None,
        responses={
            200: TrajectoryEnvelope,
            204: OpenApiResponse(description="no phase-1 work right now"),
            423: OTHER_MODE,
        },
    )
    def post(self, request):
        assignment = labeling_services.assignment_claim(labeler=self.labeler, phase1=True)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_envelope(services.trajectory_load(assignment=assignment)))


class Phase1AssignmentApi(Phase1Api):
    @extend_schema(responses={200: TrajectoryEnvelope, 409: LEASE_LOST})
    def get(self, request, assignment_id: int):
        trajectory = services.trajectory_open(assignment_id=assignment_id, labeler=self.labeler)
        return Response(_envelope(trajectory))


class Phase1StepApi(Phase1Api):
    @extend_schema(request=Phase1StepInput, responses={200: TrajectoryEnvelope, 409: LEASE_LOST})
    def post(self, request, assignment_id: int):
        data = Phase1StepInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.trajectory_step(
            assignment_id=assignment_id, labeler=self.labeler, **data.validated_data
        )
        return Response(_envelope(result.trajectory, result.finished))


class Phase1PrefetchApi(Phase1Api):
    @extend_schema(request=PrefetchInput, responses={200: PrefetchOutput, 409: LEASE_LOST})
    def post(self, request, assignment_id: int):
        data = PrefetchInput(data=request.data)
        data.is_valid(raise_exception=True)
        stored = services.trajectory_prefetch(
            assignment_id=assignment_id, labeler=self.labeler, **data.validated_data
        )
        return Response(
            PrefetchOutput(
                {
                    "ready": stored is not None,
                    "position": stored.position if stored else None,
                    "elapsed_ms": stored.elapsed_ms if stored else None,
                }
            ).data
        )


class Phase1UndoApi(Phase1Api):
    @extend_schema(request=Phase1UndoInput, responses={200: TrajectoryEnvelope, 409: LEASE_LOST})
    def post(self, request, assignment_id: int):
        data = Phase1UndoInput(data=request.data)
        data.is_valid(raise_exception=True)
        trajectory = services.trajectory_undo(
            assignment_id=assignment_id, labeler=self.labeler, **data.validated_data
        )
        return Response(_envelope(trajectory))


class Phase1EndApi(Phase1Api):
    """Give up or report a bad problem."""

    @extend_schema(
        request=Phase1EndInput,
        responses={201: Phase1EndOutput, 200: Phase1EndOutput, 409: LEASE_LOST},
    )
    def post(self, request, assignment_id: int):
        data = Phase1EndInput(data=request.data)
        data.is_valid(raise_exception=True)
        labeling, created = services.trajectory_end(
            assignment_id=assignment_id, labeler=self.labeler, **data.validated_data
        )
        return Response(
            Phase1EndOutput(
                {"labeling_id": labeling.pk, "finish_reason": labeling.finish_reason}
            ).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


# ---------------------------------------------------------------- admin endpoints


class Phase1RoundInput(serializers.Serializer):
    problem_ids = serializers.ListField(
        child=serializers.IntegerField(), allow_empty=True, required=False
    )
    split = serializers.CharField(required=False, allow_blank=True, default="")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100_000)
    generator = serializers.CharField(required=False)
    k = serializers.IntegerField(required=False, default=4)
    labelings_per_problem = serializers.IntegerField(required=False, default=1)
    temperature = serializers.FloatField(required=False, default=0.7)
    top_p = serializers.FloatField(required=False, default=1.0)
    max_new_tokens = serializers.IntegerField(required=False, default=128)
    force_answer = serializers.BooleanField(required=False, allow_null=True, default=None)
    seed = serializers.IntegerField(required=False, default=0)


class Phase1RoundOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    state = serializers.CharField()
    labelings_per_task = serializers.IntegerField()
    strategy_params = serializers.JSONField()
    created_at = serializers.DateTimeField()
    tasks_total = serializers.IntegerField(required=False)
    tasks_done = serializers.IntegerField(required=False)


class Phase1RoundsApi(APIView):
    """Admins: create a phase-1 round (``problem_ids``, or the first ``limit`` problems of an
    optional ``split``), list them."""

    permission_classes = [IsStepwiseAdmin]

    @extend_schema(responses=Phase1RoundOutput(many=True))
    def get(self, request):
        return Response(Phase1RoundOutput(selectors.phase1_rounds(), many=True).data)

    @extend_schema(request=Phase1RoundInput, responses={201: Phase1RoundOutput})
    def post(self, request):
        from training.sampling import default_generator, problems_select

        data = Phase1RoundInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["generator"] = values.get("generator") or default_generator()
        split, limit = values.pop("split"), values.pop("limit", None)
        try:
            if values.get("problem_ids") is None:
                if limit is None:
                    raise ValidationError(
                        {"problem_ids": ["Give problem_ids, or limit (with an optional split)."]}
                    )
                values["problem_ids"] = problems_select(split=split or None, limit=limit)
            generation = services.phase1_round_create(**values, launched_by=request.user)
        except ValidationError as exc:
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        return Response(Phase1RoundOutput(generation).data, status=status.HTTP_201_CREATED)
