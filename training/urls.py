from django.urls import path

from training import apis
from training.phase1 import apis as phase1_apis

app_name = "training"

urlpatterns = [
    path("training/base-models/", apis.BaseModelListApi.as_view(), name="base-models"),
    path("training/versions/", apis.PRMVersionListApi.as_view(), name="versions"),
    path("training/versions/<int:pk>/", apis.PRMVersionDetailApi.as_view(), name="version"),
    path("training/versions/<int:pk>/train/", apis.PRMVersionTrainApi.as_view(), name="train"),
    path(
        "training/versions/<int:pk>/evaluate/",
        apis.PRMVersionEvaluateApi.as_view(),
        name="evaluate",
    ),
    path("training/versions/<int:pk>/score/", apis.PRMVersionScoreApi.as_view(), name="score"),
    path(
        "training/versions/<int:pk>/activate/",
        apis.PRMVersionActivateApi.as_view(),
        name="activate",
    ),
    path("training/versions/<int:pk>/retire/", apis.PRMVersionRetireApi.as_view(), name="retire"),
    path("training/runs/", apis.TrainingRunListApi.as_view(), name="runs"),
    path("training/runs/<int:pk>/", apis.TrainingRunDetailApi.as_view(), name="run"),
    path("training/generators/", apis.GeneratorListApi.as_view(), name="generators"),
    path("training/sampling-runs/", apis.SamplingRunListApi.as_view(), name="sampling-runs"),
    path(
        "training/sampling-runs/<int:pk>/",
        apis.SamplingRunDetailApi.as_view(),
        name="sampling-run",
    ),
    # Phase-1 interactive labeling keeps its place under /api/labeling/phase1/: labelers use it.
    path("labeling/phase1/claim/", phase1_apis.Phase1ClaimApi.as_view(), name="phase1-claim"),
    path(
        "labeling/phase1/assignments/<int:assignment_id>/",
        phase1_apis.Phase1AssignmentApi.as_view(),
        name="phase1-assignment",
    ),
    path(
        "labeling/phase1/assignments/<int:assignment_id>/step/",
        phase1_apis.Phase1StepApi.as_view(),
        name="phase1-step",
    ),
    path(
        "labeling/phase1/assignments/<int:assignment_id>/prefetch/",
        phase1_apis.Phase1PrefetchApi.as_view(),
        name="phase1-prefetch",
    ),
    path(
        "labeling/phase1/assignments/<int:assignment_id>/undo/",
        phase1_apis.Phase1UndoApi.as_view(),
        name="phase1-undo",
    ),
    path(
        "labeling/phase1/assignments/<int:assignment_id>/end/",
        phase1_apis.Phase1EndApi.as_view(),
        name="phase1-end",
    ),
    path("labeling/phase1/rounds/", phase1_apis.Phase1RoundsApi.as_view(), name="phase1-rounds"),
]
