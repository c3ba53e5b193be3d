"""PQL engagement figures come from grouped aggregates: people with no activity, several
journeys and several PQLs are each scored on their own rows."""

from __future__ import annotations

from datetime import date

from analytics.dashboards import pql_figures
from analytics.inputs import DateRange
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


def test_the_count_and_days_of_new_pqls_hold_every_pql_not_only_the_rows_listed(
    workspace, person, track
):
    trial = JourneyFactory(workspace=workspace, key="trial")
    for name, became in (("ann", at(3, 2)), ("bob", at(3, 9)), ("cy", at(5, 12))):
        JourneyProgressFactory(
            end_user=person(name), journey=trial, started_at=at(1), pql_at=became
        )
    track(workspace.end_users.get(external_id="cy"), "login", at(6))
    march = DateRange(date(2025, 3, 1), date(2025, 3, 31))

    listed = pqls.pqls(workspace=workspace, date_range=march, now=at(10), limit=1)
    engaged = pqls.pqls(workspace=workspace, date_range=march, now=at(10), min_score=1)

    assert [r.external_id for r in listed.rows] == ["cy"]  # the best score
    assert listed.total == 3
    assert {d.day: d.pqls for d in listed.per_day} == {date(2025, 3, 3): 2, date(2025, 3, 5): 1}
    # The minimum score keeps out the same people from the count as from the list.
    assert (engaged.total, [r.external_id for r in engaged.rows]) == (1, ["cy"])


def test_new_pqls_are_counted_on_the_day_of_the_report_s_time_zone(workspace, person):
    trial = JourneyFactory(workspace=workspace, key="trial")
    # 02:00 UTC on 3 March is still 2 March in New York.
    JourneyProgressFactory(end_user=person("ann"), journey=trial, started_at=at(1), pql_at=at(3, 2))
    march = DateRange(date(2025, 3, 1), date(2025, 3, 5), "America/New_York")

    result = pqls.pqls(workspace=workspace, date_range=march, now=at(10))
    bars = dict(pql_figures(result, march)[0].rows)

    assert result.per_day == (pqls.PqlDay(day=date(2025, 3, 2), pqls=1),)
    assert (bars["2025-03-02"], bars["2025-03-03"]) == (1, 0)
