from django.urls import path

from active_learning import apis

urlpatterns = [
    path("rounds/", apis.RoundListCreateApi.as_view(), name="round-list"),
    path("rounds/dashboard/", apis.RoundDashboardApi.as_view(), name="round-dashboard"),
    path("rounds/<int:number>/", apis.RoundDetailApi.as_view(), name="round-detail"),
    path("rounds/<int:number>/pause/", apis.RoundPauseApi.as_view(), name="round-pause"),
    path("rounds/<int:number>/resume/", apis.RoundResumeApi.as_view(), name="round-resume"),
    path("rounds/<int:number>/cancel/", apis.RoundCancelApi.as_view(), name="round-cancel"),
]
