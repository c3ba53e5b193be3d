"""Input of the analytics API: parsed and typed here, checked further by analytics.inputs."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from analytics.inputs import MAX_FUNNEL_STEPS, PROPERTY_OPERATORS


class DateRangeInput(serializers.Serializer):
    date_from = serializers.DateField(help_text="First day (inclusive), YYYY-MM-DD.")
    date_to = serializers.DateField(help_text="Last day (inclusive), YYYY-MM-DD.")
    timezone = serializers.CharField(default="UTC", help_text="IANA time zone of the days.")
    export = serializers.ChoiceField(
        choices=["json", "csv"], default="json", help_text="csv downloads the table."
    )


class JourneyFunnelInput(DateRangeInput):
    journey = serializers.SlugField()
    breakdown = serializers.ChoiceField(
        choices=["lifecycle", "trait", "segment"], required=False, allow_null=True
    )
    breakdown_value = serializers.CharField(required=False, allow_null=True)


class ExperimentInput(serializers.Serializer):
    export = serializers.ChoiceField(
        choices=["json", "csv"], default="json", help_text="csv downloads the table."
    )
    experiment = serializers.SlugField(help_text="The experiment's key.")
    goal = serializers.ChoiceField(
        choices=["milestone", "funnel", "retention"],
        default="milestone",
        help_text="milestone (and its velocity), funnel or retention.",
    )
    milestone = serializers.SlugField(
        required=False, allow_null=True, help_text="Milestone goal: empty is the experiment's."
    )
    window_days = serializers.IntegerField(
        required=False, allow_null=True, help_text="From exposure; empty is the experiment's."
    )
    steps = serializers.CharField(
        required=False, allow_blank=True, help_text="Funnel goal: event names, comma-separated."
    )
    event = serializers.CharField(required=False, allow_blank=True, help_text="Retention goal.")
    day = serializers.IntegerField(default=1, help_text="Retention goal: from this day on.")


class VelocityInput(DateRangeInput):
    journey = serializers.SlugField()
    horizon_days = serializers.IntegerField(default=14, min_value=1, max_value=365)


class WalkthroughFunnelInput(DateRangeInput):
    walkthrough = serializers.SlugField()


class PropertyFilterInput(serializers.Serializer):
    key = serializers.CharField(max_length=100)
    operator = serializers.ChoiceField(choices=list(PROPERTY_OPERATORS), default="eq")
    value = serializers.JSONField(required=False, allow_null=True)


class FunnelStepInput(serializers.Serializer):
    event = serializers.CharField(max_length=200)
    filters = PropertyFilterInput(many=True, default=list)


class FunnelExclusionInput(serializers.Serializer):
    event = serializers.CharField(max_length=200)
    from_step = serializers.IntegerField()
    to_step = serializers.IntegerField()
    filters = PropertyFilterInput(many=True, default=list)


class FunnelBreakdownInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["event", "person"])
    property = serializers.CharField(max_length=100)
    attribution = serializers.ChoiceField(
        choices=["first_touch", "last_touch", "all_steps", "step"], default="first_touch"
    )
    step = serializers.IntegerField(required=False, allow_null=True)


class EventFunnelInput(DateRangeInput):
    steps = serializers.ListField(
        child=FunnelStepInput(), max_length=MAX_FUNNEL_STEPS + 1, help_text="2 to 20 steps."
    )
    order = serializers.ChoiceField(choices=["ordered", "strict", "unordered"], default="ordered")
    window_seconds = serializers.IntegerField(
        default=14 * 86400, help_text="Conversion window, 1 second to 90 days (7776000)."
    )
    exclusions = FunnelExclusionInput(many=True, default=list)
    breakdown = FunnelBreakdownInput(required=False, allow_null=True)
    interval = serializers.ChoiceField(choices=["day", "week"], default="day")
    aggregate_by = serializers.CharField(
        required=False, allow_null=True, help_text="A trait naming the account; default: person."
    )
    people_limit = serializers.IntegerField(default=100)


class RetentionInput(DateRangeInput):
    period = serializers.ChoiceField(choices=["day", "week", "month"], default="day")
    periods = serializers.IntegerField(default=8)
    mode = serializers.ChoiceField(choices=["on", "on_or_after"], default="on")
    cohort_type = serializers.ChoiceField(choices=["first_time", "recurring"], default="first_time")
    cohort_event = serializers.CharField(required=False, allow_null=True)
    journey = serializers.SlugField(required=False, allow_null=True)
    return_event = serializers.CharField(required=False, allow_null=True)


class LifecycleInput(serializers.Serializer):
    export = serializers.ChoiceField(choices=["json", "csv"], default="json")
    date_from = serializers.DateField(
        required=False, allow_null=True, help_text="With date_to: the states over time too."
    )
    date_to = serializers.DateField(required=False, allow_null=True)
    timezone = serializers.CharField(default="UTC", help_text="IANA time zone of the days.")
    period = serializers.ChoiceField(choices=["day", "week", "month"], default="day")
    activity_event = serializers.CharField(
        required=False, allow_null=True, help_text="Active means doing this; empty: any event."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (attrs.get("date_from") is None) != (attrs.get("date_to") is None):
            raise serializers.ValidationError({"date_to": ["Give both date_from and date_to."]})
        return attrs


class PqlInput(serializers.Serializer):
    export = serializers.ChoiceField(choices=["json", "csv"], default="json")
    journey = serializers.SlugField(required=False, allow_null=True)
    date_from = serializers.DateField(required=False, allow_null=True)
    date_to = serializers.DateField(required=False, allow_null=True)
    timezone = serializers.CharField(default="UTC")
    period_days = serializers.IntegerField(default=30)
    min_score = serializers.IntegerField(default=0)
    search = serializers.CharField(default="", allow_blank=True)
    limit = serializers.IntegerField(default=1000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (attrs.get("date_from") is None) != (attrs.get("date_to") is None):
            raise serializers.ValidationError({"date_to": ["Give both date_from and date_to."]})
        return attrs


class AdoptionInput(DateRangeInput):
    features = serializers.CharField(help_text="Up to 6 event names, comma separated.")


class AdoptionSegmentInput(serializers.Serializer):
    features = serializers.ListField(child=serializers.CharField(max_length=200))
    used = serializers.ListField(child=serializers.BooleanField())
    key = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=120)


class PaiInput(DateRangeInput):
    key_event = serializers.CharField()
    window_days = serializers.IntegerField(default=1)
    retention_day = serializers.IntegerField(default=21)
    max_threshold = serializers.IntegerField(default=10)
    return_event = serializers.CharField(required=False, allow_null=True)
