from django.contrib import admin

from training import models


class TrainingRunInline(admin.TabularInline):
    model = models.TrainingRun
    extra = 0
    fields = ["kind", "state", "progress", "created_at", "finished_at"]
    readonly_fields = fields


@admin.register(models.PRMVersion)
class PRMVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "state", "base_model", "created_at", "activated_at"]
    list_filter = ["kind", "state"]
    inlines = [TrainingRunInline]


@admin.register(models.TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "prm_version", "kind", "state", "progress", "created_at", "finished_at"]
    list_filter = ["kind", "state"]


@admin.register(models.SolutionScore)
class SolutionScoreAdmin(admin.ModelAdmin):
    list_display = ["id", "prm_version", "solution", "score"]
    raw_id_fields = ["solution"]
