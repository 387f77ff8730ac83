"""The admin console's browser pages: rounds, data (imports, generation, pool) and PRMs."""

from django.urls import path

from active_learning import views

app_name = "console"

urlpatterns = [
    path("", views.rounds_dashboard, name="rounds"),
    path("data/", views.data_dashboard, name="data"),
    path("prm/", views.prm_dashboard, name="prm"),
]
