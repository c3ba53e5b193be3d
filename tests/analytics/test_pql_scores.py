"""PQL engagement figures come from grouped aggregates: people with no activity, several
journeys and several PQLs are each scored on their own rows."""

from __future__ import annotations

from analytics.report import pqls
from tests.analytics.conftest import at
from tests.factories import (
    JourneyFactory,
    JourneyProgressFactory,
    MilestoneCompletionFactory,
    MilestoneFactory,
)


def test_each_pql_is_scored_on_their_own_activity_only(workspace, person, track):
    trial = JourneyFactory(workspace=workspace, key="trial")
    team = JourneyFactory(workspace=workspace, key="team")
    installed = MilestoneFactory(journey=trial, key="installed")
    MilestoneFactory(journey=trial, key="campaign")
    invited = MilestoneFactory(journey=team, key="invited")
    ann, bob, quiet = person("ann"), person("bob"), person("quiet")
    for who in (ann, bob, quiet):
        JourneyProgressFactory(end_user=who, journey=trial, started_at=at(1), pql_at=at(2))
    JourneyProgressFactory(end_user=ann, journey=team, started_at=at(1), pql_at=at(4))
    for milestone, journey in ((installed, trial), (invited, team)):
        MilestoneCompletionFactory(
            end_user=ann, milestone=milestone, journey=journey, completed_at=at(5)
        )
    track(ann, "login", at(5))
    track(ann, "login", at(5, 12))  # same day: one active day
    track(ann, "$pageview", at(6))
    track(bob, "export", at(7))
    track(bob, "export", at(8))
    track(bob, "$message_clicked", at(8))

    rows = {(r.external_id, r.journey): r for r in pqls.pqls(workspace=workspace, now=at(10)).rows}

    figures = {
        key: (
            r.milestones_completed,
            r.milestones_total,
            r.logins,
            r.active_days,
            r.core_actions,
            r.features_used,
            r.message_engagement,
            r.score,
        )
        for key, r in rows.items()
    }
    assert figures == {
        ("ann", "trial"): (1, 2, 2, 2, 2, 1, 0, 2 + 2 + 3 * 2 + 2 * 1),
        ("ann", "team"): (1, 1, 2, 2, 2, 1, 0, 2 + 2 + 3 * 2 + 2 * 1),
        ("bob", "trial"): (0, 2, 0, 2, 0, 1, 1, 2 + 2 * 1 + 2 * 1),
        ("quiet", "trial"): (0, 2, 0, 0, 0, 0, 0, 0),
    }
    assert [r.external_id for r in pqls.pqls(workspace=workspace, now=at(10)).rows] == [
        "ann",
        "ann",
        "bob",
        "quiet",
    ]
