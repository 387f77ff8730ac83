import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
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


class BaseModelForm(forms.ModelForm):
    class Meta:
        model = models.BaseModel
        fields = ["name", "path", "kind", "notes"]

    def clean(self):
        # The same checks as the service (local causal LM with weights); the save goes through it.
        cleaned = super().clean()
        from training.prm.backbones import BackboneError, check_backbone

        self.backbone = None
        # A missing model can still be renamed or annotated; a new path is always checked.
        if cleaned.get("path") and ("path" in self.changed_data or self.instance.pk is None):
            try:
                self.backbone = check_backbone(cleaned["path"])
            except BackboneError as exc:
                raise ValidationError({"path": str(exc)}) from exc
        return cleaned


@admin.register(models.BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    form = BaseModelForm
    list_display = ["name", "path", "kind", "params", "found"]
    list_filter = ["kind"]
    search_fields = ["name", "path"]
    readonly_fields = ["parameter_count", "created_at"]

    @admin.display(description="parameters", ordering="parameter_count")
    def params(self, obj) -> str:
        count = obj.parameter_count
        return "-" if count is None else f"{count / 1e6:,.1f}M"

    @admin.display(description="found on disk", boolean=True)
    def found(self, obj) -> bool:
        return obj.found

    def save_model(self, request, obj, form, change) -> None:
        if form.backbone is not None:
            obj.path = form.backbone.path
            obj.parameter_count = form.backbone.parameter_count
        super().save_model(request, obj, form, change)


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
        rule = services.promotion_rule(obj.kind)
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
