from __future__ import annotations

import math

from analytics.dashboards import adoption_figures, histogram_position
from analytics.report import adoption


def test_percentile_marks_stand_where_their_time_falls_inside_a_bucket():
    # Buckets: "< 1 min" (index 0), "1-10 min" (1), "10-60 min" (2), ...
    assert histogram_position(30) == 0.0
    assert histogram_position(60) == 0.5
    assert math.isclose(histogram_position(math.sqrt(60 * 600)), 1.0)
    assert histogram_position(599) < 1.5 < histogram_position(600) + 1e-9
    assert histogram_position(10**9) == 9.0


def test_the_adoption_heat_map_counts_people_who_used_both_features():
    def cell(used: tuple[bool, bool], users: int) -> adoption.AdoptionCell:
        return adoption.AdoptionCell(used=used, users=users, share=users / 10)

    matrix = adoption.AdoptionMatrix(
        features=("import", "send"),
        active_users=10,
        cells=(
            cell((False, False), 1),
            cell((True, False), 2),
            cell((False, True), 3),
            cell((True, True), 4),
        ),
    )

    heat, combinations = adoption_figures(matrix)

    assert heat.cells == [(0, 0, 0.6), (1, 0, 0.4), (0, 1, 0.4), (1, 1, 0.7)]
    assert heat.rows[0] == ["import", "60.0 % (6)", "40.0 % (4)"]
    assert combinations.categories == ["none of them", "import", "send", "import + send"]
