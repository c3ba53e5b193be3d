"""`milepost-mcp`: an MCP server (stdio) over Milepost's authoring and analytics API, for
coding agents. It acts with one workspace's secret key and so can do only what that key may
do: read and change that workspace's content and read its reports, nothing of another.

Configuration, from the environment: `MILEPOST_URL` (e.g. https://milepost.example.com) and
`MILEPOST_SECRET_KEY` (`sk_…`). Content pieces are the documents of Milepost's content as
code (format milepost-content/1, README "Content as code"); a draft changes nothing users see
until it is published.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from milepost_client.async_client import AsyncMilepost
from milepost_client.errors import ApiError, MilepostError

T = TypeVar("T")
FORMAT = "milepost-content/1"
Kind = Literal["journey", "walkthrough", "tooltip", "progress_bar", "segment"]
PublishableKind = Literal["journey", "walkthrough", "tooltip", "progress_bar"]
SECTION_OF_KIND: dict[str, str] = {
    "journey": "journeys",
    "walkthrough": "walkthroughs",
    "tooltip": "tooltips",
    "progress_bar": "progress_bars",
    "segment": "segments",
}
DEFAULT_REPORT_DAYS = 30

INSTRUCTIONS = """\
Milepost shows in-app onboarding (walkthroughs, tooltips, progress bars/checklists, journeys of
milestones) to a SaaS product's users. Use list_content and get_content to read what exists,
create_content / update_content to write drafts (preview_content first to see what would
change), publish_content to make a draft live, and the report tools to see how it performs.
A walkthrough step looks like {"page_url_pattern": "/dashboard", "selector": "#new-report",
"title": "…", "body_markdown": "…", "placement": "bottom", "advance_on": "next"}; an empty
selector shows a centred modal; advance_on is next, target_click or event (with
advance_event)."""


def _problems(messages: Any) -> str:
    return "; ".join(map(str, messages)) if isinstance(messages, list) else str(messages)


def _error(error: MilepostError) -> ToolError:
    """The API's error code first, then every problem by its path, for the agent to fix."""
    if isinstance(error, ApiError):
        details = "".join(f"\n- {path}: {_problems(m)}" for path, m in error.fields.items())
        return ToolError(f"{error.code}: {error.message}{details}")
    return ToolError(str(error))


def _document(kind: str, piece: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(piece.get("key"), str) or not piece["key"]:
        raise ToolError("invalid_content: the piece needs a 'key' (letters, digits, '-').")
    return {"format": FORMAT, SECTION_OF_KIND[kind]: [dict(piece)]}


def _find(content: Mapping[str, Any], kind: str, key: str) -> dict[str, Any] | None:
    for piece in content.get(SECTION_OF_KIND[kind], []):
        if piece.get("key") == key:
            return dict(piece)
    return None


def _summary(kind: str, piece: Mapping[str, Any]) -> dict[str, Any]:
    summary = {"kind": kind, "key": piece["key"], "name": piece.get("name", "")}
    for field in ("steps", "milestones", "conditions"):
        if isinstance(piece.get(field), list):
            summary[field] = len(piece[field])
    return summary


def _date_range(date_from: str | None, date_to: str | None) -> dict[str, Any]:
    try:
        end = date.fromisoformat(date_to) if date_to else datetime.now(UTC).date()
        start = (
            date.fromisoformat(date_from)
            if date_from
            else end - timedelta(days=DEFAULT_REPORT_DAYS - 1)
        )
    except ValueError as error:
        raise ToolError(f"invalid_date: dates are YYYY-MM-DD ({error}).") from None
    return {"date_from": start, "date_to": end}


def build_server(client: AsyncMilepost) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(
        name="milepost", title="Milepost", instructions=INSTRUCTIONS, version="0.1.0"
    )

    async def call(coroutine: Awaitable[T]) -> T:
        try:
            return await coroutine
        except MilepostError as error:
            raise _error(error) from None

    @server.tool()
    async def list_content(kind: Kind | None = None) -> dict[str, Any]:
        """List the workspace's content (drafts): kind, key, name, and how many steps,
        milestones or conditions each has. `kind` narrows the list to one kind."""
        content = await call(client.export_content())
        kinds: list[str] = [kind] if kind else list(SECTION_OF_KIND)
        return {
            "content": [
                _summary(k, piece) for k in kinds for piece in content.get(SECTION_OF_KIND[k], [])
            ]
        }

    @server.tool()
    async def get_content(kind: Kind, key: str) -> dict[str, Any]:
        """One piece of content as its full document (the draft), e.g. a walkthrough with
        every step."""
        piece = _find(await call(client.export_content()), kind, key)
        if piece is None:
            raise ToolError(f"unknown_key: no {kind} with the key {key!r} in this workspace.")
        return piece

    @server.tool()
    async def preview_content(kind: Kind, piece: dict[str, Any]) -> dict[str, Any]:
        """Check a piece without saving it: the changes saving it would make, or every problem
        by its path. Nothing is written."""
        result = await call(client.import_content(_document(kind, piece), dry_run=True))
        return {"changes": list(result.changes), "saved": False}

    @server.tool()
    async def create_content(kind: Kind, piece: dict[str, Any]) -> dict[str, Any]:
        """Create a new draft piece (refused if its key exists: use update_content). Users see
        it only once it is published."""
        if _find(await call(client.export_content()), kind, piece.get("key", "")) is not None:
            raise ToolError(f"key_exists: a {kind} with the key {piece['key']!r} exists.")
        result = await call(client.import_content(_document(kind, piece)))
        return {"changes": list(result.changes), "saved": True}

    @server.tool()
    async def update_content(kind: Kind, key: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change fields of an existing draft: `changes` holds only the fields to change (a
        list such as a walkthrough's `steps` is replaced whole). Publish to make it live."""
        piece = _find(await call(client.export_content()), kind, key)
        if piece is None:
            raise ToolError(f"unknown_key: no {kind} with the key {key!r} in this workspace.")
        result = await call(
            client.import_content(_document(kind, {**piece, **changes, "key": key}))
        )
        return {"changes": list(result.changes), "saved": True}

    @server.tool()
    async def publish_content(kind: PublishableKind, key: str) -> dict[str, Any]:
        """Publish a draft as its next version: from now on users see this version."""
        version = await call(client.publish(kind, key))
        return {
            "kind": version.kind,
            "key": version.key,
            "version": version.version,
            "published_at": version.published_at.isoformat(),
        }

    @server.tool()
    async def walkthrough_step_funnel(
        walkthrough: str,
        date_from: str | None = None,
        date_to: str | None = None,
        timezone: str = "UTC",
    ) -> dict[str, Any]:
        """Per step of a walkthrough: people who viewed it, completed it, dismissed the tour
        there, and how often its target was missing. Dates YYYY-MM-DD, inclusive (default: the
        last 30 days)."""
        dates = _date_range(date_from, date_to)
        funnel = await call(client.walkthrough_funnel(walkthrough, timezone=timezone, **dates))
        return funnel.raw

    @server.tool()
    async def journey_funnel(
        journey: str,
        date_from: str | None = None,
        date_to: str | None = None,
        timezone: str = "UTC",
    ) -> dict[str, Any]:
        """How many people who started a journey in the range reached each milestone (and
        every earlier one), with conversion and drop-off."""
        dates = _date_range(date_from, date_to)
        funnel = await call(client.journey_funnel(journey, timezone=timezone, **dates))
        return funnel.raw

    @server.tool()
    async def milestone_velocity(
        journey: str,
        date_from: str | None = None,
        date_to: str | None = None,
        timezone: str = "UTC",
    ) -> dict[str, Any]:
        """How long people take to reach each milestone of a journey (from the start and from
        the previous milestone): percentiles, mean, and who is still on the way."""
        dates = _date_range(date_from, date_to)
        velocity = await call(client.velocity(journey, timezone=timezone, **dates))
        return velocity.raw

    return server


def main() -> None:
    url = os.environ.get("MILEPOST_URL", "")
    secret_key = os.environ.get("MILEPOST_SECRET_KEY", "")
    if not url or not secret_key.startswith("sk_"):
        sys.exit("milepost-mcp: set MILEPOST_URL and MILEPOST_SECRET_KEY (sk_…).")
    build_server(AsyncMilepost(url, secret_key)).run("stdio")


if __name__ == "__main__":
    main()
