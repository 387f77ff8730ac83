"""Admin-only API of rounds: launch, list with progress, pause / resume / cancel, dashboard.

Labelers get 403 on every endpoint: none of the selection data (strategies, scores, which PRM
chose what) reaches them.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from active_learning import selectors, services, strategies
from labeling.models import Generation
from labeling.permissions import IsStepwiseAdmin


def export_links(number: int) -> dict[str, str]:
    return {
        "prm800k": f"/api/admin/exports/prm800k/?generation={number}",
        "stepwise": f"/api/admin/exports/stepwise/?generation={number}",
    }


class RoundOutput(serializers.ModelSerializer):
    prm_version = serializers.SerializerMethodField()
    launched_by = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    exports = serializers.SerializerMethodField()

    class Meta:
        model = Generation
        fields = [
            "id",
            "number",
            "state",
            "strategy",
            "strategy_params",
            "prm_version",
            "target_size",
            "labelings_per_task",
            "qc_rate",
            "retrain",
            "progress",
            "launched_by",
            "created_at",
            "counts",
            "exports",
        ]

    def get_prm_version(self, obj: Generation) -> dict | None:
        v = obj.prm_version
        return None if v is None else {"id": v.id, "name": v.name, "state": v.state}

    def get_launched_by(self, obj: Generation) -> str | None:
        return obj.launched_by.get_username() if obj.launched_by else None

    def get_counts(self, obj: Generation) -> dict | None:
        return self.context.get("counts", {}).get(obj.id)

    def get_exports(self, obj: Generation) -> dict[str, str]:
        return export_links(obj.number)


def _round_payload(generations: list[Generation], many: bool):
    counts = selectors.round_counts([g.id for g in generations])
    data = RoundOutput(generations, many=True, context={"counts": counts}).data
    return data if many else data[0]


class RoundListCreateApi(APIView):
    """GET: every round with its progress. POST: launch the next round."""

    permission_classes = [IsStepwiseAdmin]

    class Input(serializers.Serializer):
        prm_version = serializers.IntegerField(required=False, allow_null=True, default=None)
        strategy = serializers.ChoiceField(choices=strategies.STRATEGIES)
        strategy_params = serializers.DictField(required=False, default=dict)
        size = serializers.IntegerField(min_value=1, max_value=services.MAX_ROUND_SIZE)
        labelings_per_task = serializers.IntegerField(
            min_value=1, max_value=services.MAX_LABELINGS_PER_TASK, default=1
        )
        qc_rate = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.0)
        retrain = serializers.BooleanField(default=False)

    @extend_schema(
        operation_id="rounds_list",
        responses=inline_serializer("RoundList", {"results": RoundOutput(many=True)}),
    )
    def get(self, request):
        return Response({"results": _round_payload(selectors.round_list(), many=True)})

    @extend_schema(
        operation_id="rounds_launch",
        request=Input,
        responses={
            201: RoundOutput,
            400: OpenApiResponse(description="Field errors"),
            409: OpenApiResponse(description="Another round is launching"),
        },
    )
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        generation = services.round_launch(
            launched_by=request.user,
            strategy=v["strategy"],
            size=v["size"],
            prm_version_id=v["prm_version"],
            strategy_params=v["strategy_params"],
            labelings_per_task=v["labelings_per_task"],
            qc_rate=v["qc_rate"],
            retrain=v["retrain"],
        )
        generation = selectors.round_get(number=generation.number)
        return Response(_round_payload([generation], many=False), status=201)


def _get_round(number: int) -> Generation:
    try:
        return selectors.round_get(number=number)
    except Generation.DoesNotExist as exc:
        raise Http404(f"No round number {number}.") from exc


class RoundDetailApi(APIView):
    permission_classes = [IsStepwiseAdmin]

    @extend_schema(operation_id="rounds_detail", responses=RoundOutput)
    def get(self, request, number: int):
        return Response(_round_payload([_get_round(number)], many=False))


class _RoundActionApi(APIView):
    permission_classes = [IsStepwiseAdmin]
    action_name = ""

    @extend_schema(
        request=None,
        responses={200: RoundOutput, 409: OpenApiResponse(description="Wrong state")},
    )
    def post(self, request, number: int):
        generation = _get_round(number)
        action = getattr(services, f"round_{self.action_name}")
        action(generation_id=generation.id)
        return Response(_round_payload([_get_round(number)], many=False))


class RoundPauseApi(_RoundActionApi):
    action_name = "pause"


class RoundResumeApi(_RoundActionApi):
    action_name = "resume"


class RoundCancelApi(_RoundActionApi):
    action_name = "cancel"


class RoundDashboardApi(APIView):
    """Figures of the round dashboard (the console polls it)."""

    permission_classes = [IsStepwiseAdmin]

    @extend_schema(
        operation_id="rounds_dashboard",
        responses=inline_serializer(
            "RoundDashboard",
            {
                "rounds": RoundOutput(many=True),
                "labels_per_day": serializers.ListField(child=serializers.DictField()),
                "label_distribution": serializers.DictField(),
                "labelers": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request):
        return Response(
            {
                "rounds": _round_payload(selectors.round_list(), many=True),
                "labels_per_day": selectors.labels_per_day(),
                "label_distribution": selectors.label_distribution(),
                "labelers": selectors.labeler_quality(),
            }
        )
