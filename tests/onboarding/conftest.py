from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from onboarding import services
from onboarding.models import Criterion, Journey, Milestone, Walkthrough, Workspace
from tests.factories import JourneyFactory, MilestoneFactory, WalkthroughFactory, WorkspaceFactory


@dataclass
class TrialJourney:
    workspace: Workspace
    journey: Journey
    installed: Milestone
    messages: Milestone
    tour: Milestone
    walkthrough: Walkthrough


@pytest.fixture
def workspace() -> Workspace:
    return WorkspaceFactory(allowed_origins=["https://app.example.com"])


@pytest.fixture
def trial(workspace: Workspace) -> TrialJourney:
    """A published journey: JS installed (server), 3 messages within 1 day (PQL), and a
    walkthrough completed (PQL)."""
    journey = JourneyFactory(workspace=workspace, key="trial", name="Trial onboarding")
    walkthrough = WalkthroughFactory(workspace=workspace, key="setup-tour")
    installed = MilestoneFactory(
        journey=journey, key="installed-js", criterion=Criterion.SERVER, event_name="", position=1
    )
    messages = MilestoneFactory(
        journey=journey,
        key="sent-3-messages",
        event_name="message_sent",
        min_count=3,
        window=timedelta(days=1),
        counts_toward_pql=True,
        position=2,
    )
    tour = MilestoneFactory(
        journey=journey,
        key="took-tour",
        criterion=Criterion.WALKTHROUGH,
        event_name="",
        walkthrough=walkthrough,
        counts_toward_pql=True,
        position=3,
    )
    services.content_publish(obj=journey)
    return TrialJourney(workspace, journey, installed, messages, tour, walkthrough)


@pytest.fixture
def secret_headers(trial: TrialJourney) -> dict[str, str]:
    """The trial workspace's secret key as the test client's Authorization header."""
    return {"HTTP_AUTHORIZATION": f"Bearer {trial.workspace.keys['secret_key']}"}


@pytest.fixture
def publishable_key(trial: TrialJourney) -> str:
    return trial.workspace.keys["publishable_key"]
