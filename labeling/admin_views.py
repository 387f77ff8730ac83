"""The admin's agreement page: Krippendorff's alpha per generation and per labeler, QC."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from labeling import agreement


def agreement_view(admin_site):
    def view(request):
        # Staff who may read labelers may read their agreement figures.
        if not request.user.has_perm("labeling.view_labeler"):
            raise PermissionDenied
        context = {
            **admin_site.each_context(request),
            "title": "Labeling agreement",
            "report": agreement.agreement_report(),
        }
        return TemplateResponse(request, "admin/labeling/agreement.html", context)

    return view
