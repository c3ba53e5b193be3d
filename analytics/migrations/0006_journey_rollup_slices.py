"""Journey rollups by quarter hour of start (JourneyDayRollup.slices) and stale marks per
slice. Rows kept by hour are recomputed when next read (their slices are missing)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("analytics", "0005_dashboard_admin_entry")]

    operations = [
        migrations.RemoveField(model_name="journeydayrollup", name="hours"),
        migrations.AddField(
            model_name="journeydayrollup", name="slices", field=models.JSONField(null=True)
        ),
        migrations.RemoveConstraint(model_name="journeystaleday", name="unique_journey_stale_day"),
        migrations.AddField(
            model_name="journeystaleday",
            name="slice",
            field=models.SmallIntegerField(default=-1),
        ),
        migrations.AddConstraint(
            model_name="journeystaleday",
            constraint=models.UniqueConstraint(
                fields=("journey", "day", "slice"), name="unique_journey_stale_slice"
            ),
        ),
    ]
