"""Rounds (Generation) move from active_learning to labeling, which owns the tasks of a round.

Only Django's model state changes: the table keeps its name (``active_learning_generation``) and
its rows, constraints and foreign keys, so nothing is dropped or copied. The content type is
renamed so that permissions and admin history stay attached to the model.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor, old="active_learning", new="labeling"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if ContentType.objects.filter(app_label=new, model="generation").exists():
        return
    ContentType.objects.filter(app_label=old, model="generation").update(app_label=new)


def move_content_type_back(apps, schema_editor):
    move_content_type(apps, schema_editor, old="labeling", new="active_learning")


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0008_phase1_trajectories"),
        ("active_learning", "0004_finish_rounds_schedule"),
        ("training", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    state_operations = [
        migrations.CreateModel(
            name="Generation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.IntegerField(unique=True)),
                ("strategy", models.CharField(blank=True, default="", max_length=32)),
                ("strategy_params", models.JSONField(blank=True, default=dict)),
                ("state", models.CharField(choices=[("draft", "Draft"), ("launching", "Launching"), ("active", "Active"), ("paused", "Paused"), ("cancelled", "Cancelled"), ("finished", "Finished"), ("failed", "Failed")], default="active", max_length=16)),
                ("labelings_per_task", models.PositiveIntegerField(default=1)),
                ("qc_rate", models.FloatField(default=0.0, help_text="Share of served tasks that are QC items.")),
                ("target_size", models.PositiveIntegerField(blank=True, null=True)),
                ("retrain", models.BooleanField(default=False, help_text="Train a new PRM on all labels before scoring the pool.")),
                ("progress", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("launched_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                ("prm_version", models.ForeignKey(blank=True, help_text="The PRM that selected this generation's solutions; null for uniform or imports.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name="generations", to="training.prmversion")),
            ],
            options={
                "db_table": "active_learning_generation",
                "ordering": ["number"],
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("number__gte", -1)), name="generation_number_gte_minus_1"),
                    models.CheckConstraint(condition=models.Q(("qc_rate__gte", 0), ("qc_rate__lte", 1)), name="generation_qc_rate_range"),
                    models.CheckConstraint(condition=models.Q(("labelings_per_task__gte", 1)), name="generation_labelings_per_task_gte_1"),
                    models.UniqueConstraint(condition=models.Q(("state", "launching")), fields=("state",), name="one_launching_generation"),
                ],
            },
        ),
        migrations.AlterField(
            model_name="labeling",
            name="generation",
            field=models.ForeignKey(blank=True, help_text="Null for PRM800K phase 1.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name="labelings", to="labeling.generation"),
        ),
        migrations.AlterField(
            model_name="labelingtask",
            name="generation",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="tasks", to="labeling.generation"),
        ),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=state_operations, database_operations=[]),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
