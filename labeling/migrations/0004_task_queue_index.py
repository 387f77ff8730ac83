"""A partial index in queue order, so a claim stops at the first free task of a generation."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("labeling", "0003_lease_sweep_schedule")]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE INDEX labelingtask_open_queue_idx ON labeling_labelingtask "
                "(generation_id, priority DESC, id) WHERE state = 'open' AND kind = 'regular'"
            ),
            reverse_sql="DROP INDEX labelingtask_open_queue_idx",
        )
    ]
