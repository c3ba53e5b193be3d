"""The PQL list's completions index (issue 15, branch pql15).

The PQL list counts, per person, the milestones done in each journey and those done in the
period. Through the end user's foreign-key index each of a person's completions was a visit to
the table (3.5 of 13 s over 126 000 PQLs at 1 M people); this index holds the three columns the
report reads, so PostgreSQL answers from it alone. The table is onboarding's, the reader is
analytics: the index is analytics' to keep, hence plain SQL (the same on SQLite)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0007_saved_report_pinned_to_home"),
        ("onboarding", "0010_surveys_and_event_property_filters"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS completion_user_journey_time ON "
            "onboarding_milestonecompletion (end_user_id, journey_id, completed_at)",
            "DROP INDEX IF EXISTS completion_user_journey_time",
        )
    ]
