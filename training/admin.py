import json

from django.contrib import admin, messages
from django.utils.html import format_html

from training import models, services


class TrainingRunInline(admin.TabularInline):
    model = models.TrainingRun
    extra = 0
    fields = ["kind", "state", "progress", "attempts", "created_at", "finished_at"]
    readonly_fields = fields
    show_change_link = True
    can_delete = False


def _pretty(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(models.PRMVersion)
class PRMVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "state", "headline_metric", "created_at", "activated_at"]
    list_filter = ["kind", "state"]
    search_fields = ["name"]
    inlines = [TrainingRunInline]
    actions = ["promote", "retire"]
    readonly_fields = [
        "state", "checkpoint_path", "activated_at", "retired_at", "created_at",
        "metrics_table", "snapshot_table",
    ]  # fmt: skip
    exclude = ["metrics", "data_snapshot"]

    @admin.display(description="held-out metric")
    def headline_metric(self, obj) -> str:
        rule = services._promotion_rule(obj.kind)
        value = (obj.metrics or {}).get(rule["metric"])
        return f"{rule['metric']} {value:.4f}" if isinstance(value, int | float) else "-"

    @admin.display(description="metrics")
    def metrics_table(self, obj) -> str:
        return _pretty(obj.metrics)

    @admin.display(description="data snapshot")
    def snapshot_table(self, obj) -> str:
        return _pretty(obj.data_snapshot)

    @admin.action(description="Promote to active (if held-out metrics do not regress)")
    def promote(self, request, queryset) -> None:
        for version in queryset:
            try:
                services.prm_version_promote(prm_version_id=version.id)
                self.message_user(request, f"{version.name} is active")
            except services.TrainingError as exc:
                self.message_user(request, str(exc), level=messages.WARNING)

    @admin.action(description="Retire")
    def retire(self, request, queryset) -> None:
        for version in queryset:
            try:
                services.prm_version_retire(prm_version_id=version.id)
                self.message_user(request, f"{version.name} is retired")
            except services.TrainingError as exc:
                self.message_user(request, str(exc), level=messages.WARNING)


@admin.register(models.TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = [
        "id", "prm_version", "kind", "state", "progress_percent", "attempts", "created_at",
        "finished_at",
    ]  # fmt: skip
    list_filter = ["kind", "state"]
    list_select_related = ["prm_version"]

    def get_readonly_fields(self, request, obj=None):
        # Runs are written by workers only; the admin reads them.
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="progress")
    def progress_percent(self, obj) -> str:
        return f"{obj.progress:.0%}"


@admin.register(models.SolutionScore)
class SolutionScoreAdmin(admin.ModelAdmin):
    list_display = ["id", "prm_version", "solution", "score"]
    list_filter = ["prm_version"]
    raw_id_fields = ["solution"]
