from __future__ import annotations

from html.parser import HTMLParser

import pytest

from onboarding import services
from onboarding.markdown import render_markdown
from tests.factories import StepFactory, TooltipFactory

pytestmark = pytest.mark.django_db


class _Elements(HTMLParser):
    """Collects the real elements and attributes a browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend((tag, name, value or "") for name, value in attrs)


def elements(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def test_script_tags_in_a_step_body_never_reach_the_page() -> None:
    step = StepFactory(body_markdown="Hello <script>alert('x')</script> **there**")
    found = elements(step.body_html)
    assert "script" not in found.tags
    assert "strong" in found.tags
    assert "alert" not in "".join(value for _, _, value in found.attributes)


def test_javascript_links_are_not_links() -> None:
    html = render_markdown("[click me](javascript:alert(1)) and [docs](https://example.com)")
    hrefs = [value for _, name, value in elements(html).attributes if name == "href"]
    assert hrefs == ["https://example.com"]


def test_a_javascript_href_in_an_html_link_is_dropped() -> None:
    html = render_markdown('<a href="javascript:alert(1)">x</a> [y](JaVaScRiPt:alert(2))')
    assert all(name != "href" for _, name, _ in elements(html).attributes)


def test_onerror_attributes_never_become_attributes() -> None:
    html = render_markdown(
        '<img src="x" onerror="alert(1)">\n\n![logo](https://cdn.example.com/a.png)'
    )
    found = elements(html)
    assert [name for _, name, _ in found.attributes if name.startswith("on")] == []
    assert ("img", "src", "https://cdn.example.com/a.png") in found.attributes


def test_links_open_without_handing_over_the_window() -> None:
    html = render_markdown("[docs](https://example.com)")
    assert ("a", "rel", "noopener noreferrer") in elements(html).attributes


def test_the_published_tooltip_carries_only_sanitised_html() -> None:
    tooltip = TooltipFactory(body_markdown='<a href="#" onclick="steal()">x</a> *safe*')
    found = elements(services.content_publish(obj=tooltip).snapshot["body_html"])
    assert found.tags == ["p", "em"]
    assert found.attributes == []


def test_editing_the_markdown_re_renders_the_html() -> None:
    step = StepFactory(body_markdown="old")
    step.body_markdown = "**new**"
    step.save(update_fields=["body_markdown"])
    step.refresh_from_db()
    assert step.body_html == "<p><strong>new</strong></p>"
