"""A bounded schemathesis pass over the OpenAPI schema: every operation, called with the
workspace's real keys (the secret key as a Bearer header, the publishable key in each widget
body or query, an allowed Origin) so the generated values reach past authentication; no answer
may be a 500. Derandomized, so CI replays the same cases; the budget keeps it to seconds."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import given
from schemathesis.checks import not_a_server_error

from tests.factories import WorkspaceFactory
from tests.fuzzing import bounded

# Each request ends by closing the database connection, as in production: the test's data is
# committed so the next request's connection sees it.
pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "https://app.example.com"
# Server-sent events stay open for minutes: not a request a fuzzer can wait for.
STREAMING_PATH = "/api/v1/widget/stream"
# Cases per operation in the suite (tests/fuzzing.py).
EXAMPLES = 8


@pytest.fixture
def keys() -> dict[str, str]:
    return WorkspaceFactory(allowed_origins=[ORIGIN]).keys


def _call(case: Any, keys: dict[str, str], statuses: Counter[int]) -> None:
    for values in (case.query, case.body):
        if isinstance(values, dict) and "key" in values:
            values["key"] = keys["publishable_key"]
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {keys['secret_key']}", "Origin": ORIGIN},
        checks=[not_a_server_error],
    )
    statuses[response.status_code] += 1


def test_no_generated_call_is_answered_with_a_500(keys: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    failures: dict[str, str] = {}
    statuses: Counter[int] = Counter()
    operations = 0
    for result in schema.exclude(path=STREAMING_PATH).get_all_operations():
        operation = result.ok()
        operations += 1

        @bounded(EXAMPLES)
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            _call(case, keys, statuses)

        try:
            call()
        except Exception as failure:
            failures[operation.label] = str(failure)[:2000]

    assert operations >= 20
    assert failures == {}
    # The keys open the doors: most calls get past authentication to the view's own answer.
    assert statuses[200] + statuses[201] > statuses[401] + statuses[403]
