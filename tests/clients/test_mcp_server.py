"""The MCP server (milepost-mcp) driven by the MCP SDK's own client over stdio, against a live
Milepost: an agent creates, previews and publishes a 3-step walkthrough and reads its step
funnel; it sees only its key's workspace; a mistake comes back as the API's error code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from mcp import ClientSession, StdioServerParameters, stdio_client
from milepost_client import Milepost

from onboarding.models import PublishedVersion, Walkthrough
from tests.clients.conftest import LiveMilepost
from tests.factories import WalkthroughFactory, WorkspaceFactory

TOUR = {
    "key": "reports-tour",
    "name": "Reports tour",
    "auto_start": True,
    "steps": [
        {
            "page_url_pattern": "/reports",
            "selector": "",
            "title": "Reports",
            "body_markdown": "Hi.",
        },
        {
            "page_url_pattern": "/reports",
            "selector": "#new-report",
            "title": "New report",
            "body_markdown": "Click **New report**.",
            "advance_on": "target_click",
        },
        {
            "page_url_pattern": "/reports/new",
            "selector": "#save",
            "title": "Save it",
            "body_markdown": "Save when done.",
        },
    ],
}


@asynccontextmanager
async def agent(live: LiveMilepost, secret_key: str | None = None) -> AsyncIterator[ClientSession]:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "milepost_client.mcp_server"],
        env={
            **os.environ,
            "MILEPOST_URL": live.url,
            "MILEPOST_SECRET_KEY": secret_key or live.secret_key,
        },
    )
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def tool(session: ClientSession, name: str, **arguments: Any) -> Any:
    result = await session.call_tool(name, arguments)
    text = "".join(getattr(block, "text", "") for block in result.content)
    if result.is_error:
        return {"error": text}
    return json.loads(text)


async def test_an_agent_creates_publishes_a_walkthrough_and_reads_its_step_funnel(
    live_milepost: LiveMilepost,
) -> None:
    with Milepost(live_milepost.url, live_milepost.secret_key) as backend:
        async with agent(live_milepost) as session:
            tools = {t.name for t in (await session.list_tools()).tools}
            preview = await tool(session, "preview_content", kind="walkthrough", piece=TOUR)
            created = await tool(session, "create_content", kind="walkthrough", piece=TOUR)
            renamed = await tool(
                session,
                "update_content",
                kind="walkthrough",
                key="reports-tour",
                changes={"name": "Build your first report"},
            )
            listed = await tool(session, "list_content", kind="walkthrough")
            published = await tool(
                session, "publish_content", kind="walkthrough", key="reports-tour"
            )
            # Three people start the tour; two get past step 1, one finishes.
            for user, last_step in (("u1", 0), ("u2", 1), ("u3", 2)):
                for step in range(last_step + 1):
                    for name in ("$step_viewed", "$step_completed"):
                        backend.track(user, name, {"walkthrough": "reports-tour", "step": step})
            backend.flush()
            await sync_to_async(live_milepost.export_to_store)()
            funnel = await tool(session, "walkthrough_step_funnel", walkthrough="reports-tour")

    assert {"list_content", "create_content", "publish_content", "journey_funnel"} <= tools
    assert preview["saved"] is False
    assert created["saved"] is True
    assert renamed["saved"] is True
    assert listed["content"] == [
        {
            "kind": "walkthrough",
            "key": "reports-tour",
            "name": "Build your first report",
            "steps": 3,
        }
    ]
    assert (published["key"], published["version"]) == ("reports-tour", 1)
    assert [(s["title"], s["viewed"]) for s in funnel["steps"]] == [
        ("Reports", 3),
        ("New report", 2),
        ("Save it", 1),
    ]
    assert await sync_to_async(published_versions)("reports-tour") == [
        (live_milepost.workspace.pk, 1, "Build your first report")
    ]


def published_versions(key: str) -> list[tuple[int, int, str]]:
    return [
        (v.workspace_id, v.version, v.snapshot["name"])
        for v in PublishedVersion.objects.filter(kind="walkthrough", key=key)
    ]


@pytest.fixture
def tour_of_another_workspace(live_milepost: LiveMilepost) -> Walkthrough:
    return WalkthroughFactory(workspace=WorkspaceFactory(), key="elsewhere")


async def test_an_agent_sees_only_its_workspace_and_gets_the_api_error_code(
    live_milepost: LiveMilepost, tour_of_another_workspace: Walkthrough
) -> None:
    async with agent(live_milepost) as session:
        listed = await tool(session, "list_content")
        foreign = await tool(session, "publish_content", kind="walkthrough", key="elsewhere")
        bad = await tool(
            session, "create_content", kind="walkthrough", piece={"key": "x", "steps": [{}]}
        )

    assert listed == {"content": []}
    assert "unknown_key: No walkthrough with the key 'elsewhere'" in foreign["error"]
    assert "invalid_content:" in bad["error"]
    assert "walkthroughs[0]" in bad["error"]


def test_it_refuses_to_start_without_a_secret_key() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "milepost_client.mcp_server"],
        env={**os.environ, "MILEPOST_URL": "http://127.0.0.1:1", "MILEPOST_SECRET_KEY": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 1
    assert "MILEPOST_SECRET_KEY" in finished.stderr
