"""Request and response shapes of the server and widget API (they also document the OpenAPI
schema). Events are validated one by one by the recording module, so that a batch stores the
good events and names each bad one, instead of failing whole."""

from __future__ import annotations

from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable, e.g. unknown_milestone.")
    message = serializers.CharField(help_text="What is wrong, in words.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # A field named `fields` cannot be declared: it would hide Serializer.fields.
        fields = super().get_fields()
        fields["fields"] = serializers.DictField(required=False, help_text="Per-field messages.")
        return fields


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class TraitsSerializer(serializers.Serializer):
    traits = serializers.DictField(
        help_text="Merged into the stored traits; `signed_up_at` (ISO 8601) also sets the "
        "signup time journeys start from."
    )
    replace = serializers.BooleanField(
        default=False, help_text="Replace the stored traits instead of merging."
    )


class EndUserSerializer(serializers.Serializer):
    id = serializers.CharField(source="external_id")
    traits = serializers.DictField()
    signed_up_at = serializers.DateTimeField(allow_null=True)
    first_seen_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    lifecycle_stage = serializers.CharField()


class EventInSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Chosen by the sender; makes retries safe.")
    user_id = serializers.CharField(max_length=255)
    name = serializers.CharField(max_length=200)
    timestamp = serializers.DateTimeField(
        required=False, help_text="When it happened (ISO 8601); defaults to receive time."
    )
    properties = serializers.DictField(required=False)


class EventBatchSerializer(serializers.Serializer):
    events = EventInSerializer(many=True, help_text="At most 500 events, 500 KB in all.")
    sent_at = serializers.DateTimeField(
        required=False,
        help_text="The sender's clock when it sent the batch; corrects the events' clock skew.",
    )


class RejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.JSONField(allow_null=True)
    reason = serializers.CharField()


class AckSerializer(serializers.Serializer):
    accepted = serializers.ListField(child=serializers.CharField())
    duplicates = serializers.ListField(child=serializers.CharField())
    rejected = RejectionSerializer(many=True)


class MilestoneReportSerializer(serializers.Serializer):
    at = serializers.DateTimeField(
        required=False, help_text="When it was reached; defaults to now."
    )


class MilestoneProgressSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    completed_at = serializers.DateTimeField(allow_null=True)
    counts_toward_pql = serializers.BooleanField()


class JourneyRefSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()


class JourneyProgressSerializer(serializers.Serializer):
    journey = JourneyRefSerializer()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    milestones = MilestoneProgressSerializer(many=True)
    completed = serializers.IntegerField()
    total = serializers.IntegerField()
    percent = serializers.IntegerField()
    pql = serializers.BooleanField()
    pql_at = serializers.DateTimeField(allow_null=True)


class ProgressSerializer(serializers.Serializer):
    user = serializers.CharField()
    journeys = JourneyProgressSerializer(many=True)


class MilestoneCompletionSerializer(serializers.Serializer):
    milestone = serializers.CharField()
    completed = serializers.BooleanField(help_text="False when it had been reached already.")
    completed_at = serializers.DateTimeField()


class ErasedSerializer(serializers.Serializer):
    user = serializers.CharField()
    erased = serializers.DictField(child=serializers.IntegerField())


class WidgetHelloSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The publishable key (pk_…).")
    user = serializers.DictField(help_text="{id, traits}")
    user_hash = serializers.CharField(required=False)
    page = serializers.DictField(required=False)
    sdk = serializers.CharField(required=False)
    session = serializers.CharField(required=False)


class WidgetEventsSerializer(serializers.Serializer):
    key = serializers.CharField()
    user = serializers.DictField(help_text="{id}")
    user_hash = serializers.CharField(required=False)
    events = serializers.ListField(child=serializers.DictField())
    sent_at = serializers.DateTimeField(required=False)


class WelcomeSerializer(serializers.Serializer):
    type = serializers.CharField()
    user = serializers.DictField()
    content = serializers.DictField()
    journeys = JourneyProgressSerializer(many=True)
    theme = serializers.DictField()
    seq = serializers.IntegerField()


class WidgetAckSerializer(AckSerializer):
    type = serializers.CharField()


class WalkthroughStateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["in_progress", "completed", "dismissed"])
    step = serializers.IntegerField(help_text="The step shown (or left at), from 0.")
    attempt = serializers.IntegerField(help_text="How many times this person started it.")


class WidgetProgressSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    journeys = JourneyProgressSerializer(many=True)
    walkthroughs = serializers.DictField(
        child=WalkthroughStateSerializer(),
        help_text="Each walkthrough's state for this person, by walkthrough key.",
    )
