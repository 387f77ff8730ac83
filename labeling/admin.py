from django.contrib import admin
from django.urls import path

from labeling import models
from labeling.admin_views import agreement_view


class StepInline(admin.TabularInline):
    model = models.Step
    extra = 0


class StepAlternativeInline(admin.TabularInline):
    model = models.StepAlternative
    extra = 0


@admin.register(models.Labeler)
class LabelerAdmin(admin.ModelAdmin):
    list_display = ["__str__", "role", "screening_status", "screening_agreement", "created_at"]
    list_filter = ["role", "screening_status"]
    search_fields = ["user__username", "external_id", "pseudonym"]
    readonly_fields = ["pseudonym"]
    change_list_template = "admin/labeling/labeler/change_list.html"

    def get_urls(self):

        page = path(
            "agreement/",
            self.admin_site.admin_view(agreement_view(self.admin_site)),
            name="labeling_agreement",
        )
        return [page, *super().get_urls()]


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


@admin.register(models.Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ["id", "source_id", "subject", "level", "reference_answer", "split"]
    list_filter = ["subject", "level", "split"]
    search_fields = ["source_id", "text"]


@admin.register(models.Solution)
class SolutionAdmin(admin.ModelAdmin):
    list_display = ["id", "problem", "grade", "final_answer", "generator", "source", "num_steps"]
    list_filter = ["grade", "source", "generator", "is_pre_generated"]
    search_fields = ["problem__text", "final_answer"]
    raw_id_fields = ["problem"]
    inlines = [StepInline]


@admin.register(models.Step)
class StepAdmin(admin.ModelAdmin):
    list_display = ["id", "solution", "position"]
    raw_id_fields = ["solution"]
    inlines = [StepAlternativeInline]


@admin.register(models.LabelingTask)
class LabelingTaskAdmin(admin.ModelAdmin):
    list_display = ["id", "generation", "kind", "state", "labelings_required", "priority"]
    list_filter = ["kind", "state", "generation"]
    raw_id_fields = ["solution"]


class LabeledCompletionInline(admin.TabularInline):
    model = models.LabeledCompletion
    extra = 0


class LabeledStepInline(admin.TabularInline):
    model = models.LabeledStep
    extra = 0
    show_change_link = True


@admin.register(models.LabeledStep)
class LabeledStepAdmin(admin.ModelAdmin):
    list_display = ["id", "labeling", "position", "chosen_completion"]
    raw_id_fields = ["labeling"]
    inlines = [LabeledCompletionInline]


@admin.register(models.Labeling)
class LabelingAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "labeler",
        "solution",
        "generation",
        "finish_reason",
        "total_time_ms",
        "is_quality_control",
        "is_screening",
        "timestamp",
    ]
    list_filter = ["finish_reason", "generation", "is_quality_control", "is_screening", "source"]
    raw_id_fields = ["solution", "labeler", "task"]
    date_hierarchy = "timestamp"
    inlines = [LabeledStepInline]


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "labeler", "slot", "state", "lease_expires_at", "finished_at"]
    list_filter = ["state", "task_kind"]
    raw_id_fields = ["task", "labeler", "labeling"]
    readonly_fields = ["task_kind", "slots", "created_at"]
