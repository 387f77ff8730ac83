from django.urls import path

from training import apis

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
]
