from __future__ import annotations

from django.apps import AppConfig


class MilepostClientConfig(AppConfig):
    name = "milepost_client.django"
    label = "milepost_client"  # not "django"
    verbose_name = "Milepost"
