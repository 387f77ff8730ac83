"""LabelingTask.gold_labeling: the expert labeling a QC or screening item's gold came from."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0009_generation_from_active_learning"),
    ]

    operations = [
        migrations.AddField(
            model_name="labelingtask",
            name="gold_labeling",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="gold_for",
                to="labeling.labeling",
            ),
        ),
    ]
