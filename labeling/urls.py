from django.urls import path

from labeling import apis
from labeling.apis_exports import Prm800kExportApi, StepwiseExportApi
from labeling.apis_imports import ImportCreateApi

urlpatterns: list = [
    path("labeling/ping/", apis.PingApi.as_view(), name="labeling-ping"),
    path("labeling/token/", apis.TokenApi.as_view(), name="labeling-token"),
    path("labeling/claim/", apis.ClaimApi.as_view(), name="labeling-claim"),
    path("labeling/me/", apis.MeApi.as_view(), name="labeling-me"),
    path(
        "labeling/assignments/<int:assignment_id>/heartbeat/",
        apis.AssignmentHeartbeatApi.as_view(),
        name="labeling-heartbeat",
    ),
    path(
        "labeling/assignments/<int:assignment_id>/prefetch/",
        apis.AssignmentPrefetchApi.as_view(),
        name="labeling-prefetch",
    ),
    path(
        "labeling/assignments/<int:assignment_id>/draft/",
        apis.AssignmentDraftApi.as_view(),
        name="labeling-draft",
    ),
    path(
        "labeling/assignments/<int:assignment_id>/submit/",
        apis.AssignmentSubmitApi.as_view(),
        name="labeling-submit",
    ),
    path(
        "labeling/assignments/<int:assignment_id>/give-up/",
        apis.AssignmentGiveUpApi.as_view(),
        name="labeling-give-up",
    ),
    path(
        "labeling/assignments/<int:assignment_id>/report-bad-problem/",
        apis.AssignmentReportBadProblemApi.as_view(),
        name="labeling-report-bad-problem",
    ),
    path("labeling/admin/gold/", apis.AdminGoldApi.as_view(), name="labeling-admin-gold"),
    path(
        "labeling/admin/agreement/",
        apis.AdminAgreementApi.as_view(),
        name="labeling-admin-agreement",
    ),
    path("admin/exports/prm800k/", Prm800kExportApi.as_view(), name="export-prm800k"),
    path("admin/exports/stepwise/", StepwiseExportApi.as_view(), name="export-stepwise"),
    path("admin/imports/<str:kind>/", ImportCreateApi.as_view(), name="import-create"),
]
