from __future__ import annotations

from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from analytics import receivers  # noqa: F401 - connects the rollup receivers
        from analytics.admin import walkthrough_step_notes
        from analytics.peer_comparison import annotate_journeys
        from onboarding.admin import walkthrough_list_notes
        from onboarding.delivery import journey_annotators

        # A welcome's journeys carry peer comparison ("faster than 70 % of people…").
        if annotate_journeys not in journey_annotators:
            journey_annotators.append(annotate_journeys)
        # The walkthrough list shows which steps' targets are missing too often.
        if walkthrough_step_notes not in walkthrough_list_notes:
            walkthrough_list_notes.append(walkthrough_step_notes)
