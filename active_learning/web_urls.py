"""The admin console's browser pages (round and PRM dashboards)."""

from django.urls import path

from active_learning import views

app_name = "console"

urlpatterns = [
    path("", views.rounds_dashboard, name="rounds"),
    path("prm/", views.prm_dashboard, name="prm"),
]
