"""The admin console's browser pages: rounds, data (imports, generation, pool), PRMs, and the
review of what labelers wrote (labeling.review_views)."""

from django.urls import path

from active_learning import views
from labeling import review_views

app_name = "console"

urlpatterns = [
    path("", views.rounds_dashboard, name="rounds"),
    path("data/", views.data_dashboard, name="data"),
    path("prm/", views.prm_dashboard, name="prm"),
    path("review/", review_views.review_page, name="review"),
    path(
        "review/labelings/<int:labeling_id>/",
        review_views.review_labeling,
        name="review-labeling",
    ),
]
