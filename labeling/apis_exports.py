"""Admin-only streamed downloads of the PRM800K and stepwise-supervision exports."""

from __future__ import annotations

from collections.abc import Iterator

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from labeling.exports import (
    ExportFilter,
    export_filename,
    iter_prm800k_lines,
    iter_stepwise_lines,
    stepwise_finish_reasons,
)
from labeling.permissions import IsStepwiseAdmin

JSONL = "application/jsonl"
_STREAM = {
    (200, JSONL): OpenApiResponse(OpenApiTypes.STR, description="One JSON object per line."),
    403: OpenApiResponse(description="Not a stepwise admin."),
}


class _FilterInput(serializers.Serializer):
    generation = serializers.IntegerField(required=False, min_value=-1)
    labeler = serializers.CharField(required=False, max_length=150)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    include_qc = serializers.BooleanField(required=False, default=True)
    include_screening = serializers.BooleanField(required=False, default=True)

    def validate(self, attrs: dict) -> dict:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since >= until:
            raise serializers.ValidationError({"until": "must be later than since."})
        return attrs


def _download(lines: Iterator[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse((line + "\n" for line in lines), content_type=JSONL)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # Proxies must pass the lines on as they come, not buffer the whole export.
    response["X-Accel-Buffering"] = "no"
    return response


class Prm800kExportApi(APIView):
    """GET: every matching labeling as one PRM800K JSON line, streamed, in a file named after
    what it holds (round, labeler, first and last day).

    Query string: generation, labeler, since, until (ISO; since inclusive, until exclusive),
    include_qc, include_screening (true/false).
    """

    permission_classes = [IsStepwiseAdmin]

    class Input(_FilterInput):
        pass

    @extend_schema(parameters=[Input], responses=_STREAM)
    def get(self, request: Request) -> StreamingHttpResponse:
        filters = self.Input(data=request.query_params)
        filters.is_valid(raise_exception=True)
        name = export_filename("prm800k", ExportFilter(**filters.validated_data))
        return _download(iter_prm800k_lines(**filters.validated_data), name)


class StepwiseExportApi(APIView):
    """GET: stepwise-supervision lines ``{prompt, completions, labels}``, streamed.

    Query string: the filters of the PRM800K export plus neutral_is_positive,
    include_alternatives and include_unfinished (true/false).
    """

    permission_classes = [IsStepwiseAdmin]

    class Input(_FilterInput):
        neutral_is_positive = serializers.BooleanField(required=False, default=True)
        include_alternatives = serializers.BooleanField(required=False, default=True)
        include_unfinished = serializers.BooleanField(required=False, default=False)

    @extend_schema(parameters=[Input], responses=_STREAM)
    def get(self, request: Request) -> StreamingHttpResponse:
        options = self.Input(data=request.query_params)
        options.is_valid(raise_exception=True)
        data = dict(options.validated_data)
        shape = {
            key: data.pop(key)
            for key in ("neutral_is_positive", "include_alternatives", "include_unfinished")
        }
        held = ExportFilter(
            **data,
            finish_reasons=stepwise_finish_reasons(include_unfinished=shape["include_unfinished"]),
        )
        return _download(iter_stepwise_lines(**data, **shape), export_filename("stepwise", held))
