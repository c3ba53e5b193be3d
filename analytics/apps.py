from __future__ import annotations

from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        from analytics import receivers  # noqa: F401 - connects the rollup receivers
        from analytics.admin import walkthrough_step_notes
        from onboarding.admin import walkthrough_list_notes

        # The walkthrough list shows which steps' targets are missing too often.
        if walkthrough_step_notes not in walkthrough_list_notes:
            walkthrough_list_notes.append(walkthrough_step_notes)
