"""Analytics' own tables: per-workspace report settings and the journey funnel rollup."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from onboarding.models import Journey, Workspace


class AnalyticsSettings(models.Model):
    """How a workspace's lifecycle states and PQL engagement score read its events."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="analytics_settings"
    )
    login_event = models.CharField(max_length=200, default="login")
    customer_event = models.CharField(
        max_length=200,
        default="subscription_started",
        help_text="Its first occurrence makes a customer.",
    )
    active_event = models.CharField(
        max_length=200, default="$pageview", help_text="Done recently, a customer is active."
    )
    active_days = models.PositiveIntegerField(default=30)
    retained_event = models.CharField(max_length=200, default="subscription_renewed")
    churned_event = models.CharField(max_length=200, default="subscription_cancelled")

    class Meta:
        verbose_name = "analytics settings"
        verbose_name_plural = "analytics settings"

    def __str__(self) -> str:
        return f"Analytics settings of {self.workspace}"

    @classmethod
    def for_workspace(cls, workspace: Workspace) -> AnalyticsSettings:
        """The saved settings, or the defaults (unsaved) when the workspace has none."""
        return cls.objects.filter(workspace=workspace).first() or cls(workspace=workspace)

    def lifecycle_rules(self) -> dict[str, Any]:
        return {
            "customer_event": self.customer_event,
            "active_event": self.active_event,
            "active_days": self.active_days,
            "retained_event": self.retained_event,
            "churned_event": self.churned_event,
        }


class JourneyDayRollup(models.Model):
    """People whose journey started on one UTC day, and per milestone id how many reached it
    and every earlier one (`users`) or reached it whatever else they did (`reached`):
    milestones = {"<id>": [users, reached]}. Summed over days by journey_funnel.

    "Every earlier one" depends on the journey's milestone order, so the row keeps the ordered
    ids it was computed with (`milestone_ids`); a row whose order no longer matches the
    journey's is recomputed before it is read. Today is a day like the others: kept current
    after each commit by counting again only the slices that changed (JourneyStaleDay)."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    started = models.PositiveIntegerField(default=0)
    milestones = models.JSONField(default=dict)
    milestone_ids = models.JSONField(default=list)
    # Per slice of start (a UTC quarter hour, 96 a day): {"started": [96], "users": [[96] per
    # milestone], "reached": [...]}, so a partial day (a time zone's midnight, +5:30 and +5:45
    # included) reads its whole slices from here.
    slices = models.JSONField(null=True)
    # Milestone velocity (analytics/velocity.py): this day's durations and, from the journey's
    # first start day through this one, their running total. A total is only ever stored valid:
    # recomputing a day empties the totals of that day and every later one.
    durations = models.BinaryField(null=True)
    durations_summary = models.JSONField(null=True)
    durations_total = models.BinaryField(null=True)
    durations_total_summary = models.JSONField(null=True)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey", "day"], name="unique_journey_day_rollup")
        ]

    def __str__(self) -> str:
        return f"{self.journey_id} {self.day}: {self.started} started"


class JourneyDurationCut(models.Model):
    """Velocity's running total of durations (analytics/velocity.py) of everyone whose journey
    started before a quarter hour inside one rollup day: from the journey's first start day
    through `slice` quarter hours of the day (1-95). A time zone's midnight is such a cut
    (05:00 or 04:00 UTC in New York, 18:30 the day before in Kolkata, 18:15 in Kathmandu), so a
    week or a range in any zone is the difference of two stored totals, as in UTC, where the
    days' own running totals (JourneyDayRollup.durations_total) are the cuts at midnight.

    Added when a report first reads a cut; emptied (`durations` null) with the running totals
    when a day up to it is counted again, and added up again by the refresh that follows."""

    rollup = models.ForeignKey(JourneyDayRollup, on_delete=models.CASCADE, related_name="cuts")
    slice = models.SmallIntegerField()
    durations = models.BinaryField(null=True)
    summary = models.JSONField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rollup", "slice"], name="unique_journey_duration_cut")
        ]

    def __str__(self) -> str:
        return f"{self.rollup} before slice {self.slice}"


class JourneyStaleDay(models.Model):
    """A slice (a UTC quarter hour) of journey starts whose rollup must be counted again before
    it is read: written after the commit that changed it, cleared by the refresh
    (analytics/journey_rollups.py). `slice` -1 marks the whole day.

    `marked_at` moves on every new mark, so a refresh only clears the marks it saw, never one
    that arrived while it was counting. `first_marked_at` does not move: since then the slice
    has changes nobody counted, and a report counts it itself once that is longer ago than
    MILEPOST_ROLLUP_FRESH_SECONDS (the refresh, woken after the commit, counts it first)."""

    WHOLE_DAY = -1

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    slice = models.SmallIntegerField(default=WHOLE_DAY)
    marked_at = models.DateTimeField(default=timezone.now)
    first_marked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "day", "slice"], name="unique_journey_stale_slice"
            )
        ]

    def __str__(self) -> str:
        return f"{self.journey_id} {self.day} {self.slice}"


class StorePurge(models.Model):
    """Rows the analytics store must drop: one person's (an erasure), a whole workspace's, or a
    workspace's events before an instant (retention). Written in the same transaction as the
    deletion in the primary database; the export applies and removes it, so a store that is
    down when a person is erased still forgets them once it is back."""

    workspace_id = models.BigIntegerField()
    end_user_id = models.BigIntegerField(null=True, blank=True)
    before = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "analytics store purge"

    def __str__(self) -> str:
        who = f"person {self.end_user_id}" if self.end_user_id else "workspace"
        return f"Purge {who} of workspace {self.workspace_id}"


class SavedReport(models.Model):
    """A report's inputs (its dashboard's query string) saved under a name and pinned to the
    workspace's analytics home as a tile, for everyone in the workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=120)
    report = models.SlugField(max_length=40)
    query = models.TextField(blank=True, help_text="The dashboard's query string.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workspace", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="unique_saved_report_name")
        ]

    def __str__(self) -> str:
        return self.name


class Dashboard(AnalyticsSettings):
    """No table: gives the analytics home its place in admin's index and sidebar."""

    class Meta:
        proxy = True
        verbose_name = "dashboard"
        verbose_name_plural = "dashboards"
