from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from onboarding.models import EndUser, Event


def test_it_generates_people_and_events_for_the_workspace(workspace):
    call_command(
        "generate_demo_events", "--users", "50", "--days", "10", "--workspace", workspace.slug
    )

    assert EndUser.objects.filter(workspace=workspace).count() == 50
    assert Event.objects.filter(workspace=workspace, name="$pageview").count() >= 50


def test_it_refuses_an_unknown_workspace_and_bad_counts(workspace):
    with pytest.raises(CommandError, match="--users"):
        call_command("generate_demo_events", "--users", "0", "--workspace", workspace.slug)
    with pytest.raises(CommandError, match="No workspace"):
        call_command("generate_demo_events", "--workspace", "nope")
