"""Admin-only HTTP API: PRM versions and their runs; launch training, evaluate, score, activate.

Thin views: validate, call a service, serialize. Domain errors (``TrainingError``) are
answered by ``config.exception_handler`` as 400s with a message.
"""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from config.pagination import Pagination
from config.schema import PAGE_PARAMETERS, paginated
from labeling.permissions import IsStepwiseAdmin
from training import sampling, selectors, services
from training.models import BaseModel, PRMVersion, SamplingRun, TrainingRun


class RunOutput(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id", "prm_version", "kind", "state", "progress", "attempts", "error", "log",
            "params", "created_at", "started_at", "finished_at", "heartbeat_at",
        ]  # fmt: skip


class VersionOutput(serializers.ModelSerializer):
    class Meta:
        model = PRMVersion
        fields = [
            "id", "name", "kind", "state", "base_model", "hyperparameters", "data_snapshot",
            "metrics", "checkpoint_path", "created_at", "activated_at", "retired_at",
        ]  # fmt: skip


class _AdminApi(APIView):
    permission_classes = [IsStepwiseAdmin]


class BaseModelOutput(serializers.ModelSerializer):
    found = serializers.BooleanField(read_only=True, help_text="Is the directory on disk now?")

    class Meta:
        model = BaseModel
        fields = ["id", "name", "path", "kind", "parameter_count", "found", "notes", "created_at"]


class BaseModelListApi(_AdminApi):
    """Backbones a PRM can start from; pass `name` as `base_model` when launching a training."""

    @extend_schema(operation_id="training_base_models_list", responses=BaseModelOutput(many=True))
    def get(self, request):
        return Response(BaseModelOutput(selectors.base_model_list(), many=True).data)


class PRMVersionListApi(_AdminApi):
    class TrainingLaunchInput(serializers.Serializer):
        name = serializers.CharField(max_length=128)
        base_model = serializers.CharField(
            max_length=512, help_text="A registered base model's name, or a local directory."
        )
        kind = serializers.ChoiceField(choices=PRMVersion.Kind.choices, default="prm")
        epochs = serializers.FloatField(min_value=0.01, max_value=100, required=False)
        learning_rate = serializers.FloatField(min_value=1e-8, max_value=1, required=False)
        max_length = serializers.IntegerField(min_value=8, max_value=32768, required=False)
        batch_tokens = serializers.IntegerField(min_value=16, required=False)
        backbone_layers = serializers.IntegerField(
            min_value=0,
            required=False,
            help_text="Keep only the first N layers of the base model (0: all of them).",
        )
        train_layers = serializers.IntegerField(
            min_value=0,
            required=False,
            help_text="Train only the top K layers and the head (0: every layer).",
        )
        activate = serializers.BooleanField(default=False)

    @extend_schema(
        operation_id="training_versions_list",
        parameters=PAGE_PARAMETERS,
        responses=paginated(VersionOutput),
    )
    def get(self, request):
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.prm_version_list(), request, view=self)
        return paginator.get_paginated_response(VersionOutput(page, many=True).data)

    @extend_schema(
        request=TrainingLaunchInput,
        responses={
            201: inline_serializer(
                "TrainingLaunchOutput", {"version": VersionOutput(), "run": RunOutput()}
            )
        },
    )
    def post(self, request):
        data = self.TrainingLaunchInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        activate = fields.pop("activate")
        create = {k: fields.pop(k) for k in ("name", "base_model", "kind")}

        def launch():
            with transaction.atomic():
                version = services.prm_version_create(**create, hyperparameters=fields)
                run = services.training_run_start(prm_version_id=version.id, activate=activate)
            return version, run

        version, run = launch()
        return Response(
            {"version": VersionOutput(version).data, "run": RunOutput(run).data},
            status=status.HTTP_201_CREATED,
        )


class PRMVersionDetailApi(_AdminApi):
    @extend_schema(responses=VersionOutput)
    def get(self, request, pk: int):
        return Response(VersionOutput(get_object_or_404(PRMVersion, pk=pk)).data)


class PRMVersionTrainApi(_AdminApi):
    """Train again a version whose training failed."""

    class TrainingRetryInput(serializers.Serializer):
        activate = serializers.BooleanField(default=False)

    @extend_schema(request=TrainingRetryInput, responses={202: RunOutput})
    def post(self, request, pk: int):
        get_object_or_404(PRMVersion, pk=pk)
        data = self.TrainingRetryInput(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.training_run_start(prm_version_id=pk, **data.validated_data)
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class PRMVersionEvaluateApi(_AdminApi):
    class TrainingEvaluateInput(serializers.Serializer):
        processbench_path = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(request=TrainingEvaluateInput, responses={202: RunOutput})
    def post(self, request, pk: int):
        get_object_or_404(PRMVersion, pk=pk)
        data = self.TrainingEvaluateInput(data=request.data)
        data.is_valid(raise_exception=True)
        path = data.validated_data.get("processbench_path") or None
        run = services.evaluation_run_start(prm_version_id=pk, processbench_path=path)
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class PRMVersionScoreApi(_AdminApi):
    class TrainingScoreInput(serializers.Serializer):
        solution_ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1), required=False, allow_null=True
        )

    @extend_schema(request=TrainingScoreInput, responses={202: RunOutput})
    def post(self, request, pk: int):
        get_object_or_404(PRMVersion, pk=pk)
        data = self.TrainingScoreInput(data=request.data)
        data.is_valid(raise_exception=True)
        ids = data.validated_data.get("solution_ids")
        run = services.scoring_run_start(prm_version_id=pk, solution_ids=ids)
        return Response(RunOutput(run).data, status=status.HTTP_202_ACCEPTED)


class PRMVersionActivateApi(_AdminApi):
    class TrainingActivateInput(serializers.Serializer):
        force = serializers.BooleanField(default=False)

    @extend_schema(request=TrainingActivateInput, responses=VersionOutput)
    def post(self, request, pk: int):
        get_object_or_404(PRMVersion, pk=pk)
        data = self.TrainingActivateInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.prm_version_promote(prm_version_id=pk, **data.validated_data)
        return Response(VersionOutput(version).data)


class PRMVersionRetireApi(_AdminApi):
    @extend_schema(request=None, responses=VersionOutput)
    def post(self, request, pk: int):
        get_object_or_404(PRMVersion, pk=pk)
        version = services.prm_version_retire(prm_version_id=pk)
        return Response(VersionOutput(version).data)


class TrainingRunListApi(_AdminApi):
    @extend_schema(
        operation_id="training_runs_list",
        parameters=[
            OpenApiParameter("prm_version", int, description="Only this version's runs."),
            *PAGE_PARAMETERS,
        ],
        responses=paginated(RunOutput),
    )
    def get(self, request):
        version = request.query_params.get("prm_version")
        if version is not None and not version.isdigit():
            raise ValidationError({"prm_version": ["Give a version id."]})
        runs = selectors.training_run_list(prm_version_id=int(version) if version else None)
        paginator = Pagination()
        page = paginator.paginate_queryset(runs, request, view=self)
        return paginator.get_paginated_response(RunOutput(page, many=True).data)


class TrainingRunDetailApi(_AdminApi):
    @extend_schema(responses=RunOutput)
    def get(self, request, pk: int):
        return Response(RunOutput(get_object_or_404(TrainingRun, pk=pk)).data)


# --------------------------------------------------------------------------- sampling runs


class SamplingRunOutput(serializers.ModelSerializer):
    """A sampling run. `counts`: requested = kept + duplicates + no_answer + empty +
    already_sampled; kept = correct + wrong + ungraded; truncated = drawn samples cut at
    max_new_tokens."""

    created_by = serializers.SerializerMethodField()
    request = serializers.SerializerMethodField()
    problem_count = serializers.SerializerMethodField()

    class Meta:
        model = SamplingRun
        fields = [
            "id", "generator", "state", "progress", "counts", "cursor", "problem_count",
            "request", "attempts", "error", "log", "created_by", "created_at", "started_at",
            "finished_at", "heartbeat_at",
        ]  # fmt: skip

    def get_created_by(self, run: SamplingRun) -> str | None:
        return run.created_by.get_username() if run.created_by else None

    def get_problem_count(self, run: SamplingRun) -> int:
        return len(run.params.get("problem_ids", []))

    @extend_schema_field(
        inline_serializer(
            "SamplingRequest",
            {
                "samples": serializers.IntegerField(),
                "seed": serializers.IntegerField(),
                "sampling": serializers.DictField(help_text="temperature, top_p, ..."),
                "selection": serializers.DictField(help_text="split, limit, problems_file"),
                "generator_config": serializers.DictField(),
                "prompt_sha256": serializers.CharField(),
            },
        )
    )
    def get_request(self, run: SamplingRun) -> dict:
        params = run.params
        return {
            key: params.get(key)
            for key in (
                "samples", "seed", "sampling", "selection", "generator_config", "prompt_sha256",
            )
        }  # fmt: skip


class SamplingRunListOutput(SamplingRunOutput):
    class Meta(SamplingRunOutput.Meta):
        fields = [f for f in SamplingRunOutput.Meta.fields if f != "log"]


class _ExampleInput(serializers.Serializer):
    problem = serializers.CharField()
    solution = serializers.CharField()


class _PromptInput(serializers.Serializer):
    instruction = serializers.CharField()
    examples = _ExampleInput(many=True)


class SamplingRunListApi(_AdminApi):
    """Sample a candidate pool from a generator (POST), and the runs so far (GET)."""

    class SamplingLaunchInput(serializers.Serializer):
        samples = serializers.IntegerField(
            min_value=1,
            max_value=sampling.MAX_SAMPLES_PER_PROBLEM,
            help_text="Samples per problem.",
        )
        generator = serializers.CharField(
            max_length=128, required=False, help_text="A configured generator; default if absent."
        )
        temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
        top_p = serializers.FloatField(min_value=0, max_value=1, required=False)
        max_new_tokens = serializers.IntegerField(
            min_value=1, max_value=sampling.MAX_NEW_TOKENS, required=False
        )
        seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
        split = serializers.CharField(max_length=16, required=False, help_text="Problem split.")
        limit = serializers.IntegerField(
            min_value=1, required=False, help_text="At most this many problems (first by id)."
        )
        problem_ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1), required=False, allow_empty=False
        )
        prompt = _PromptInput(required=False, help_text="Few-shot prompt; the default if absent.")

    @extend_schema(
        operation_id="training_sampling_runs_list",
        parameters=PAGE_PARAMETERS,
        responses=paginated(SamplingRunListOutput),
    )
    def get(self, request):
        paginator = Pagination()
        page = paginator.paginate_queryset(sampling.sampling_run_list(), request, view=self)
        return paginator.get_paginated_response(SamplingRunListOutput(page, many=True).data)

    @extend_schema(
        request=SamplingLaunchInput,
        responses={
            201: SamplingRunOutput,
            200: OpenApiResponse(SamplingRunOutput, description="This request ran already."),
        },
    )
    def post(self, request):
        data = self.SamplingLaunchInput(data=request.data)
        data.is_valid(raise_exception=True)
        run, created = sampling.sampling_run_start(**data.validated_data, created_by=request.user)
        return Response(
            SamplingRunOutput(run).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class SamplingRunDetailApi(_AdminApi):
    @extend_schema(responses=SamplingRunOutput)
    def get(self, request, pk: int):
        return Response(SamplingRunOutput(get_object_or_404(SamplingRun, pk=pk)).data)


class GeneratorListApi(_AdminApi):
    """The generators a sampling run can use (from the settings), and whether each is usable."""

    @extend_schema(
        operation_id="training_generators_list",
        responses=inline_serializer(
            "Generator",
            {
                "name": serializers.CharField(),
                "backend": serializers.CharField(),
                "model": serializers.CharField(),
                "base_url": serializers.CharField(),
                "is_default": serializers.BooleanField(),
                "available": serializers.BooleanField(),
                "problem": serializers.CharField(help_text="Why it is not available."),
            },
            many=True,
        ),
    )
    def get(self, request):
        return Response(sampling.generator_list())
