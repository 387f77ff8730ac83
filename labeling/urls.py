from django.urls import path  # noqa: F401

from labeling.apis_exports import Prm800kExportApi, StepwiseExportApi

urlpatterns: list = [
    path("admin/exports/prm800k/", Prm800kExportApi.as_view(), name="export-prm800k"),
    path("admin/exports/stepwise/", StepwiseExportApi.as_view(), name="export-stepwise"),
]
