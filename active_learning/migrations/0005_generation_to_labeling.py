"""Generation now lives in labeling (see labeling 0009): state only, the table stays as it is."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("active_learning", "0004_finish_rounds_schedule"),
        ("labeling", "0009_generation_from_active_learning"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="selection",
                    name="generation",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="selections", to="labeling.generation"),
                ),
                migrations.DeleteModel(name="Generation"),
            ],
            database_operations=[],
        ),
    ]
