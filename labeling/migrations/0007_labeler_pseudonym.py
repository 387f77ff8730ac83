"""Labeler.pseudonym: a random UUID per labeler, written by exports instead of the username.

Existing rows each get their own UUID (a column default would give them all the same one), then
the column becomes NOT NULL and unique.
"""

import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0006_solution_sampling"),
    ]

    operations = [
        migrations.AddField(
            model_name="labeler",
            name="pseudonym",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunSQL(
            "UPDATE labeling_labeler SET pseudonym = gen_random_uuid() WHERE pseudonym IS NULL",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="labeler",
            name="pseudonym",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
