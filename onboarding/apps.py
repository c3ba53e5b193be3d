from __future__ import annotations

from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    name = "onboarding"
    verbose_name = "Onboarding"

    def ready(self) -> None:
        # Registers the secret-key security scheme with drf-spectacular.
        from onboarding import (
            lookups,  # noqa: F401 - registers `field__any`
            recording,  # noqa: F401 - clears its journey cache on publish
        )
        from onboarding.api import schema  # noqa: F401
