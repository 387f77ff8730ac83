"""Admin-only imports over HTTP: POST a multipart ``file`` to /api/admin/imports/<kind>/."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.imports import IMPORTERS
from labeling.permissions import IsStepwiseAdmin

# Overridable with settings.STEPWISE_IMPORT_API_MAX_BYTES.
DEFAULT_MAX_BYTES = 64 * 2**20


class ImportCreateApi(APIView):
    """Runs the import in the request (one transaction) and answers with its counts, or 400
    with the first bad line: ``{"line": 7, "field": "label.steps[2]...", "detail": "..."}``;
    an empty file is refused as the commands refuse it: ``{"file": ["the file is empty: ..."]}``."""

    permission_classes = [IsStepwiseAdmin]
    parser_classes = [MultiPartParser]

    class ImportFileInputSerializer(serializers.Serializer):
        # An empty file reaches the importer, which refuses it as the commands do.
        file = serializers.FileField(allow_empty_file=True)

    class ImportResultSerializer(serializers.Serializer):
        kind = serializers.CharField()
        lines = serializers.IntegerField()
        created = serializers.DictField(child=serializers.IntegerField())
        skipped = serializers.DictField(child=serializers.IntegerField())

    class ImportLineErrorSerializer(serializers.Serializer):
        line = serializers.IntegerField()
        field = serializers.CharField(allow_null=True)
        detail = serializers.CharField()

    class ImportFileErrorSerializer(serializers.Serializer):
        file = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        request={"multipart/form-data": ImportFileInputSerializer},
        responses={
            201: ImportResultSerializer,
            # A bad line, or a file refused as a whole (empty; no file given).
            400: PolymorphicProxySerializer(
                component_name="ImportError",
                serializers=[ImportLineErrorSerializer, ImportFileErrorSerializer],
                resource_type_field_name=None,
            ),
            413: ImportFileErrorSerializer,
        },
    )
    def post(self, request: Request, kind: str) -> Response:
        importer = IMPORTERS.get(kind)
        if importer is None:
            raise Http404(f"unknown import kind {kind!r}")
        serializer = self.ImportFileInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        limit = getattr(settings, "STEPWISE_IMPORT_API_MAX_BYTES", DEFAULT_MAX_BYTES)
        if upload.size > limit:
            # The import runs inside this request; past this size it would outlive the web
            # server's timeout, so big files go through the management commands.
            return Response(
                {
                    "file": [
                        f"{upload.size} bytes is over the {limit}-byte limit for imports over "
                        f"HTTP; use `python manage.py import_{kind} FILE`."
                    ]
                },
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        upload.seek(0)
        # A bad line (ImportLineError) is answered by config.exception_handler, naming the line.
        result = importer(upload.file)
        return Response(
            self.ImportResultSerializer(result.as_dict()).data, status=status.HTTP_201_CREATED
        )
