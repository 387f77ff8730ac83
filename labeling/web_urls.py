"""Browser pages (the labeling workspace and the admin console) served by Django."""

from django.contrib.auth.decorators import login_required
from django.urls import path
from django.views.generic import TemplateView

urlpatterns = [
    path("", login_required(TemplateView.as_view(template_name="labeling/home.html")), name="home"),
]
