from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class EngagementConfig(AppConfig):
    name = "engagement"
    verbose_name = "Engagement"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from analytics.home import home_tiles
        from engagement import receivers
        from engagement.home_tiles import deliveries_tile
        from engagement.models import Rule
        from onboarding import signals

        uid = "engagement"
        signals.events_recorded.connect(receivers.on_events_recorded, dispatch_uid=uid)
        signals.milestone_completed.connect(receivers.on_milestone_completed, dispatch_uid=uid)
        signals.journey_started.connect(receivers.on_journey_started, dispatch_uid=uid)
        signals.pql_reached.connect(receivers.on_pql_reached, dispatch_uid=uid)
        signals.end_user_connected.connect(receivers.on_end_user_connected, dispatch_uid=uid)
        signals.end_user_updated.connect(receivers.on_end_user_updated, dispatch_uid=uid)
        post_save.connect(receivers.on_rule_changed, sender=Rule, dispatch_uid=uid)
        post_delete.connect(receivers.on_rule_changed, sender=Rule, dispatch_uid=uid)
        home_tiles.register(deliveries_tile)
        self._register_translations()

    @staticmethod
    def _register_translations() -> None:
        from engagement.models import Message
        from engagement.services import MESSAGE_TEXT_FIELDS, message_document
        from onboarding import translations

        def documents(workspace_id: int) -> Any:
            for message in Message.objects.filter(workspace_id=workspace_id).order_by("key"):
                yield message.key, message_document(message)

        translations.register(
            kind="message", fields=MESSAGE_TEXT_FIELDS, documents=documents, published=False
        )
