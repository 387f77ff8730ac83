"""The labeling API (endpoints and errors: docs/task-leasing.md; client: frontend/src/api.ts).

Views validate input, call a service, serialize the result. Domain errors become DRF-style
answers: 400 per field, 403 for someone else's assignment, 409 ``lease_lost``.
"""

from __future__ import annotations

import json

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from config.login import LOCKED_OUT_MESSAGE
from labeling import agreement, selectors, services
from labeling.models import Labeler, LabelingTask
from labeling.permissions import IsLabeler, IsStepwiseAdmin

MAX_DRAFT_BYTES = 256 * 1024


class LabelingApi(APIView):
    """A labeler's endpoint. Domain errors (``services.LabelingError``) are answered by
    ``config.exception_handler``: 400 field errors, 403, 404, 409 with a ``code``."""

    permission_classes = [IsLabeler]

    @property
    def labeler(self) -> Labeler:
        return self.request._stepwise_labeler


# ---------------------------------------------------------------- serializers


class AlternativeOutput(serializers.Serializer):
    position = serializers.IntegerField()
    text = serializers.CharField()


class StepOutput(serializers.Serializer):
    position = serializers.IntegerField()
    text = serializers.CharField()
    alternatives = AlternativeOutput(many=True)


class ProblemOutput(serializers.Serializer):
    text = serializers.CharField()
    reference_answer = serializers.CharField()


class DraftOutput(serializers.Serializer):
    state = serializers.JSONField()
    active_ms = serializers.IntegerField()
    saved_at = serializers.DateTimeField()


class ProgressOutput(serializers.Serializer):
    done_today = serializers.IntegerField()
    round = serializers.IntegerField()
    left_in_round = serializers.IntegerField()
    left_capped = serializers.BooleanField()


class AssignmentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    lease_expires_at = serializers.DateTimeField()
    problem = ProblemOutput()
    steps = StepOutput(many=True)
    draft = DraftOutput(allow_null=True)
    progress = ProgressOutput()


class ClaimOutput(serializers.Serializer):
    assignment = AssignmentOutput()


class LeaseOutput(serializers.Serializer):
    lease_expires_at = serializers.DateTimeField()


class AlternativeRatingInput(serializers.Serializer):
    position = serializers.IntegerField(min_value=1)
    rating = serializers.IntegerField(min_value=-1, max_value=1, allow_null=True, required=False)
    flagged = serializers.BooleanField(required=False, default=False)


class StepRatingInput(serializers.Serializer):
    position = serializers.IntegerField(min_value=0)
    rating = serializers.IntegerField(min_value=-1, max_value=1, allow_null=True, required=False)
    flagged = serializers.BooleanField(required=False, default=False)
    alternatives = AlternativeRatingInput(many=True, required=False, default=list)


class SubmitInput(serializers.Serializer):
    finish_reason = serializers.ChoiceField(choices=sorted(services.FINISH_REASONS))
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=10000)
    total_time_ms = serializers.IntegerField(min_value=0)
    steps = StepRatingInput(many=True)
    claim_next = serializers.BooleanField(required=False, default=False)


class EndEarlyInput(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, max_length=10000)
    total_time_ms = serializers.IntegerField(min_value=0)
    steps = StepRatingInput(many=True, required=False, default=list)
    claim_next = serializers.BooleanField(required=False, default=False)


class SubmitOutput(serializers.Serializer):
    labeling_id = serializers.IntegerField()
    finish_reason = serializers.CharField()
    next = ClaimOutput(
        required=False,
        allow_null=True,
        help_text="With claim_next: the next task, claimed in the same request (null: no work).",
    )


class DraftInput(serializers.Serializer):
    state = serializers.JSONField()
    active_ms = serializers.IntegerField(min_value=0)

    def validate_state(self, value):
        if len(json.dumps(value, separators=(",", ":"))) > MAX_DRAFT_BYTES:
            raise serializers.ValidationError(f"a draft may hold at most {MAX_DRAFT_BYTES} bytes")
        return value


class DraftSavedOutput(serializers.Serializer):
    saved_at = serializers.DateTimeField()
    lease_expires_at = serializers.DateTimeField()


class RecentOutput(serializers.Serializer):
    finished_at = serializers.DateTimeField()
    total_time_ms = serializers.IntegerField(allow_null=True)
    finish_reason = serializers.CharField()


class HistoryCompletionOutput(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    rating = serializers.IntegerField(allow_null=True)
    flagged = serializers.BooleanField()


class HistoryStepOutput(HistoryCompletionOutput):
    position = serializers.IntegerField()
    gold = serializers.IntegerField(
        allow_null=True, help_text="Only for QC items of a closed round."
    )
    alternatives = HistoryCompletionOutput(many=True)


class HistoryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    finished_at = serializers.DateTimeField()
    finish_reason = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    total_time_ms = serializers.IntegerField(allow_null=True)
    problem = serializers.CharField()
    reference_answer = serializers.CharField(allow_blank=True)
    steps = HistoryStepOutput(many=True)
    quality_control = serializers.BooleanField(
        help_text="True only once the item's round is closed (live QC items look like any task)."
    )
    gold_agreement = serializers.FloatField(allow_null=True)


class MeOutput(serializers.Serializer):
    username = serializers.CharField()
    screening_status = serializers.ChoiceField(choices=Labeler.ScreeningStatus.choices)
    tasks_today = serializers.IntegerField()
    mean_time_ms_today = serializers.IntegerField(allow_null=True)
    recent = RecentOutput(many=True)
    history = HistoryOutput(many=True)


# Claims and submits answer with dicts built here rather than through ClaimOutput and
# SubmitOutput: the serializer tree cost more server CPU than the rest of a claim (BENCHMARKS.md,
# "Labeling loop under load"). The serializers still define the schema; a test holds both equal
# (tests/labeling/test_hot_path.py).
_DATETIME = serializers.DateTimeField()


def claim_body(payload: dict) -> dict:
    """``ClaimOutput({"assignment": payload}).data``, without the serializers."""
    draft = payload["draft"]
    return {
        "assignment": {
            "id": payload["id"],
            "lease_expires_at": _DATETIME.to_representation(payload["lease_expires_at"]),
            "problem": payload["problem"],
            "steps": payload["steps"],
            "draft": draft
            and {
                "state": draft["state"],
                "active_ms": draft["active_ms"],
                "saved_at": _DATETIME.to_representation(draft["saved_at"]),
            },
            "progress": payload["progress"],
        }
    }


LEASE_LOST = OpenApiResponse(
    description="lease_lost: the lease expired, was reassigned or the task was cancelled"
)


# ---------------------------------------------------------------- labeler endpoints


class PingApi(LabelingApi):
    """The framework's floor: an authenticated request that reads one row."""

    @extend_schema(
        responses=inline_serializer("PingOutput", {"labeler_id": serializers.IntegerField()})
    )
    def get(self, request):
        return Response({"labeler_id": self.labeler.pk})


class ClaimApi(LabelingApi):
    @extend_schema(
        request=None,
        responses={200: ClaimOutput, 204: OpenApiResponse(description="no work right now")},
    )
    def post(self, request):
        assignment = services.assignment_claim(labeler=self.labeler)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        if services.is_phase1(assignment):
            return Response(
                {
                    "detail": "You have an interactive (phase 1) task open: finish it at "
                    "/label/interactive/.",
                    "code": "other_mode_open",
                },
                status=status.HTTP_423_LOCKED,
            )
        return Response(claim_body(selectors.assignment_payload(assignment=assignment)))


class AssignmentHeartbeatApi(LabelingApi):
    @extend_schema(request=None, responses={200: LeaseOutput, 409: LEASE_LOST})
    def post(self, request, assignment_id: int):
        assignment = services.assignment_heartbeat(
            assignment_id=assignment_id, labeler=self.labeler
        )
        return Response(LeaseOutput(assignment).data)


class AssignmentPrefetchApi(LabelingApi):
    """The next task, leased while the labeler works on this one (asked again: renewed)."""

    @extend_schema(
        request=None,
        responses={
            200: ClaimOutput,
            204: OpenApiResponse(description="nothing to prefetch"),
            409: LEASE_LOST,
        },
    )
    def post(self, request, assignment_id: int):
        assignment = services.assignment_prefetch(labeler=self.labeler, current_id=assignment_id)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(claim_body(selectors.assignment_payload(assignment=assignment)))


class AssignmentDraftApi(LabelingApi):
    @extend_schema(request=DraftInput, responses={200: DraftSavedOutput, 409: LEASE_LOST})
    def put(self, request, assignment_id: int):
        data = DraftInput(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = services.assignment_save_draft(
            assignment_id=assignment_id,
            labeler=self.labeler,
            state=data.validated_data["state"],
            active_ms=data.validated_data["active_ms"],
        )
        return Response(
            DraftSavedOutput(
                {
                    "saved_at": assignment.draft_saved_at,
                    "lease_expires_at": assignment.lease_expires_at,
                }
            ).data
        )


def _finish(view: LabelingApi, *, assignment_id: int, data: dict) -> Response:
    labeling, created = services.assignment_submit(
        assignment_id=assignment_id,
        labeler=view.labeler,
        finish_reason=data["finish_reason"],
        reason=data.get("reason", ""),
        total_time_ms=data["total_time_ms"],
        steps=data["steps"],
    )
    # SubmitOutput's representation; "next" only when asked for and the claim did not lose a
    # race (the page then claims itself).
    body = {"labeling_id": labeling.pk, "finish_reason": labeling.finish_reason}
    if data.get("claim_next"):
        # The next claim rides on the submit, so the workspace waits one round trip between
        # tasks, not two. Its own transaction: the labeling above is stored whatever happens
        # here.
        try:
            assignment = services.assignment_claim(labeler=view.labeler)
        except services.LeaseLost:
            assignment = False
        if assignment is None:
            body["next"] = None
        elif assignment:
            body["next"] = claim_body(selectors.assignment_payload(assignment=assignment))
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class AssignmentSubmitApi(LabelingApi):
    @extend_schema(
        request=SubmitInput,
        responses={201: SubmitOutput, 200: SubmitOutput, 409: LEASE_LOST},
    )
    def post(self, request, assignment_id: int):
        data = SubmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _finish(self, assignment_id=assignment_id, data=dict(data.validated_data))


class AssignmentEndEarlyApi(LabelingApi):
    """Give up, or report a bad problem: a submit with that finish reason."""

    finish_reason = ""

    @extend_schema(
        request=EndEarlyInput,
        responses={201: SubmitOutput, 200: SubmitOutput, 409: LEASE_LOST},
    )
    def post(self, request, assignment_id: int):
        data = EndEarlyInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _finish(
            self,
            assignment_id=assignment_id,
            data={**data.validated_data, "finish_reason": self.finish_reason},
        )


class AssignmentGiveUpApi(AssignmentEndEarlyApi):
    finish_reason = "give_up"


class AssignmentReportBadProblemApi(AssignmentEndEarlyApi):
    finish_reason = "bad_problem"


class MeApi(LabelingApi):
    @extend_schema(responses=MeOutput)
    def get(self, request):
        summary = selectors.labeler_summary(labeler=self.labeler)
        summary["history"] = selectors.labeler_history(labeler=self.labeler)
        return Response(MeOutput(summary).data)


class TokenApi(ObtainAuthToken):
    """Username and password for an API token (scripts), under the same lockout as the login
    form (config/login.py): a locked-out client gets 429 even with the right password."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        responses={
            200: inline_serializer("TokenOutput", {"token": serializers.CharField()}),
            400: OpenApiResponse(description="wrong username or password"),
            429: OpenApiResponse(description="too many failed attempts: locked out for a while"),
        }
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        valid = serializer.is_valid()
        # Set by django-axes inside authenticate(): refused, or this failure reached the limit.
        if getattr(request, "axes_locked_out", False):
            return Response(
                {"detail": LOCKED_OUT_MESSAGE},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": str(settings.STEPWISE_LOGIN_WINDOW_SECONDS)},
            )
        if not valid:
            raise serializers.ValidationError(serializer.errors)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})


# ---------------------------------------------------------------- admin endpoints


GOLD_ITEM_KINDS = [
    (LabelingTask.Kind.SCREENING.value, "screening item (generation -1)"),
    (LabelingTask.Kind.QUALITY_CONTROL.value, "quality-control item of a generation"),
]


class GoldInput(serializers.Serializer):
    solution_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=GOLD_ITEM_KINDS)
    generation_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    gold_ratings = serializers.ListField(
        child=serializers.IntegerField(min_value=-1, max_value=1),
        required=False,
        allow_null=True,
        default=None,
    )
    expert_labeling_id = serializers.IntegerField(required=False, allow_null=True, default=None)


class GoldOutput(serializers.Serializer):
    task_id = serializers.IntegerField(source="pk")
    kind = serializers.CharField()
    generation_id = serializers.IntegerField()
    gold_ratings = serializers.ListField(child=serializers.IntegerField())
    gold_labeling_id = serializers.IntegerField(allow_null=True)


class AdminGoldApi(APIView):
    """Mark a solution as a screening item or a generation's QC item, with gold ratings."""

    permission_classes = [IsStepwiseAdmin]

    @extend_schema(request=GoldInput, responses={201: GoldOutput})
    def post(self, request):
        data = GoldInput(data=request.data)
        data.is_valid(raise_exception=True)
        task = services.task_mark_gold(**data.validated_data)
        return Response(GoldOutput(task).data, status=status.HTTP_201_CREATED)


class AdminAgreementApi(APIView):
    """Inter-annotator agreement (Krippendorff's alpha, ordinal) and QC agreement."""

    permission_classes = [IsStepwiseAdmin]

    @extend_schema(
        responses=inline_serializer(
            "AgreementReport",
            {
                "generations": serializers.ListField(child=serializers.DictField()),
                "labelers": serializers.ListField(child=serializers.DictField()),
                "qc": serializers.ListField(child=serializers.DictField()),
            },
        )
    )
    def get(self, request):
        return Response(agreement.agreement_report())
