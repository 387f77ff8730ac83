from django.contrib import admin

from active_learning import models


@admin.register(models.Selection)
class SelectionAdmin(admin.ModelAdmin):
    """Read-only: a selection is a record of what a round's PRM chose and why."""

    list_display = ["generation", "rank", "solution", "reason", "score", "key", "task"]
    list_filter = ["reason", "generation"]
    list_select_related = ["generation"]
    raw_id_fields = ["solution", "task"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
