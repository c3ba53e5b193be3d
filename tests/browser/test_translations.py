"""The demo tour in the person's language, in real Chromium: French, Arabic (right to left,
with its counter in reading order), and the fallbacks (pt-BR gets pt, ja gets the default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import expect

from onboarding import services, translation_files
from onboarding.models import Walkthrough
from tests.browser.conftest import Live, in_thread, new_tab, snippet
from tests.browser.test_widget_layout import rtl_dashboard

pytestmark = pytest.mark.browser

CARD = "milepost-widget [role=dialog]"
CHECKLIST = "milepost-widget [data-progress-bar]"
SCREENSHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"

# Where each character of the step counter sits on screen, left to right: what a person reads.
COUNTER_GLYPHS = """() => {
  const root = document.querySelector('milepost-widget').shadowRoot;
  const meta = root.querySelector('[role=dialog] .n');
  const text = meta.firstChild;
  const out = [];
  for (let i = 0; i < text.length; i++) {
    const range = document.createRange();
    range.setStart(text, i);
    range.setEnd(text, i + 1);
    const rect = range.getBoundingClientRect();
    if (rect.width > 0 && text.data[i].trim()) out.push([rect.left, text.data[i]]);
  }
  return out.sort((a, b) => a[0] - b[0]).map(([, c]) => c).join('');
}"""


def in_language(browser: Any, locale: str) -> Any:
    """A browser whose language is `locale` (navigator.language and Accept-Language)."""
    context = browser.new_context(viewport={"width": 1200, "height": 800}, locale=locale)
    context.set_default_timeout(10_000)
    return context


def box(locator: Any) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None
    return found


def test_a_french_browser_gets_the_demo_tour_in_french(live: Live, browser: Any) -> None:
    context = in_language(browser, "fr-FR")
    try:
        page = new_tab(context)
        page.goto(f"{live.demo_url}/dashboard")
        card = page.locator(CARD)
        expect(card).to_contain_text("Bienvenue sur Acme")
        expect(card).to_contain_text("première campagne")
        expect(card.locator(".n")).to_have_text("\u20681 sur 4\u2069")
        expect(page.get_by_role("button", name="Fermer Visite de bienvenue")).to_be_visible()
        checklist = page.locator(CHECKLIST)
        expect(checklist).to_contain_text("Bien démarrer avec Acme")
        expect(checklist).to_contain_text("Installer le snippet")
        page.get_by_role("button", name="Suivant").click()
        expect(card).to_contain_text("Vos chiffres")
        expect(page.get_by_role("button", name="Retour")).to_be_visible()
        page.wait_for_timeout(400)  # the card's entry animation
        page.screenshot(path=str(SCREENSHOTS / "widget-tour-fr.png"))
        assert (
            page.evaluate(
                "document.querySelector('milepost-widget').shadowRoot.querySelector('.l').lang"
            )
            == "fr"
        )
        assert page.errors == []
    finally:
        context.close()


def test_an_arabic_browser_gets_the_tour_right_to_left_with_its_counter_in_order(
    live: Live, browser: Any
) -> None:
    context = in_language(browser, "ar")
    try:
        page = new_tab(context)
        page.goto(f"{live.demo_url}/dashboard")  # a left-to-right host page
        card = page.locator(CARD)
        expect(card).to_contain_text("مرحبًا بك في Acme")
        # The digits Intl gives Arabic here, and "1 من 4" read right to left: 1 on the right.
        one, two, three, four, zero = (
            page.evaluate(f"({n}).toLocaleString('ar')") for n in (1, 2, 3, 4, 0)
        )
        expect(card.locator(".n")).to_have_text(f"\u2068{one} من {four}\u2069")
        assert page.evaluate(COUNTER_GLYPHS) == f"{four}نم{one}"
        card_box = box(card)
        close = box(page.get_by_role("button", name="إغلاق جولة الترحيب"))
        assert close["x"] + close["width"] / 2 < card_box["x"] + card_box["width"] / 2  # left

        page.get_by_role("button", name="التالي").click()
        expect(card).to_have_attribute("data-step", "1")
        expect(card).to_contain_text("أرقامك")
        back = box(page.get_by_role("button", name="السابق"))
        forward = box(page.get_by_role("button", name="التالي"))
        assert forward["x"] < back["x"]  # reading order runs right to left
        assert page.evaluate(COUNTER_GLYPHS) == f"{four}نم{two}"

        checklist = page.locator(CHECKLIST)
        expect(checklist).to_contain_text("البدء مع Acme")
        assert box(checklist)["x"] < 100  # bottom-left: the mirror of bottom-right
        expect(checklist.locator("button").first).to_contain_text(f"{zero} من {three}")
        page.wait_for_timeout(400)
        page.screenshot(path=str(SCREENSHOTS / "widget-tour-ar.png"))
        assert page.errors == []
    finally:
        context.close()


def test_an_english_tour_in_a_right_to_left_page_reads_2_of_4_not_of_4_2(
    live: Live, page: Any
) -> None:
    rtl_dashboard(live, page)
    card = page.locator(CARD)
    expect(card).to_contain_text("Welcome to Acme")
    page.get_by_role("button", name="Next").click()
    expect(card).to_have_attribute("data-step", "1")
    assert page.evaluate(COUNTER_GLYPHS) == "2of4"


def test_pt_br_falls_back_to_pt_and_japanese_to_the_default_language(
    live: Live, browser: Any
) -> None:
    workspace = live.demo

    def translate_into_portuguese() -> None:
        tour = Walkthrough.objects.get(workspace=workspace, key="welcome-tour")
        first = tour.steps.order_by("position").first()
        assert first is not None
        translation_files.translation_set(
            workspace=workspace,
            kind="walkthrough",
            key="welcome-tour",
            locale="pt",
            texts=[
                ("name", "Tour de boas-vindas"),
                (f"steps.{first.pk}.title", "Bem-vindo à Acme"),
            ],
        )
        services.content_publish(obj=tour)

    in_thread(translate_into_portuguese)
    for locale, title, body, button in [
        ("pt-BR", "Bem-vindo à Acme", "first campaign", "Próximo"),
        ("ja-JP", "Welcome to Acme", "first campaign", "Next"),
    ]:
        context = in_language(browser, locale)
        try:
            page = new_tab(context)
            page.goto(f"{live.demo_url}/dashboard")
            card = page.locator(CARD)
            expect(card).to_contain_text(title)
            expect(card).to_contain_text(body)  # no pt body: the English text, field by field
            expect(page.get_by_role("button", name=button)).to_be_visible()
            page.wait_for_timeout(400)
            page.screenshot(path=str(SCREENSHOTS / f"widget-tour-{locale}.png"))
            assert page.errors == []
        finally:
            context.close()


def test_the_locale_trait_wins_on_a_strict_csp_host_page(live: Live, page: Any) -> None:
    workspace = live.demo

    def allow_host() -> None:
        workspace.allowed_origins = [*workspace.allowed_origins, live.host_url]
        workspace.save(update_fields=["allowed_origins"])

    in_thread(allow_host)
    nonce = "n0nce"
    live.host.add(
        "/dashboard",
        "<!doctype html><html lang=en><head><title>Host</title>"
        + snippet(live, workspace, "trait-user", '{"locale": "fr"}').replace(
            "<script", f'<script nonce="{nonce}"'
        )
        + "</head><body><main><div id=stats-panel>Stats</div></main></body></html>",
        csp=f"default-src 'none'; script-src 'nonce-{nonce}'; "
        f"connect-src {live.milepost_url} {live.milepost_url.replace('http', 'ws')}; "
        "style-src 'none'",
    )
    page.goto(f"{live.host_url}/dashboard")  # an English browser
    card = page.locator(CARD)
    expect(card).to_contain_text("Bienvenue sur Acme")
    expect(page.get_by_role("button", name="Suivant")).to_be_visible()
    assert page.errors == []


def test_admin_shows_what_is_untranslated_per_content_and_language(live: Live, page: Any) -> None:
    page.goto(f"{live.milepost_url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "milepost-demo")
    page.click("input[type=submit]")
    page.goto(f"{live.milepost_url}/admin/onboarding/translation/status/?locale=de")
    french_tour = page.locator("tr[data-kind=walkthrough][data-locale=fr]")
    expect(french_tour).to_contain_text("9 of 9")
    german_tour = page.locator("tr[data-kind=walkthrough][data-locale=de]")
    expect(german_tour).to_contain_text("0 of 9")
    expect(german_tour).to_have_class("untranslated")
    page.screenshot(path=str(SCREENSHOTS / "admin-translation-status.png"), full_page=True)
    german_tour.get_by_role("link", name="Translate").click()
    expect(page.locator("h1")).to_contain_text("Translate walkthrough “welcome-tour” into de")
    page.screenshot(path=str(SCREENSHOTS / "admin-translate-form.png"), full_page=True)
