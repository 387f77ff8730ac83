from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.health import health, not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    # Failed sign-ins are limited by django-axes in authenticate() (config/login.py).
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health, name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file: no inline script under the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("labeling.urls")),
    path("api/", include("training.urls")),
    path("api/", include("active_learning.urls")),
    path("console/", include("active_learning.web_urls")),
    path("", include("labeling.web_urls")),
]

# An unknown URL under /api/ answers JSON like the rest of the API (the schema says so).
handler404 = not_found
