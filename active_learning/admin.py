from django.contrib import admin

from active_learning import models


@admin.register(models.Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = [
        "number",
        "strategy",
        "state",
        "prm_version",
        "labelings_per_task",
        "qc_rate",
        "created_at",
    ]
    list_filter = ["state", "strategy"]
