"""The demo tour in the person's language, in real Chromium: French, Arabic (right to left,
with its counter in reading order and arrow keys that follow it), and the fallbacks (pt-BR gets
pt, ja gets the default); the survey and the resource center in French and Arabic, with no
English word left."""

# French is written with its own apostrophe (U+2019), as translators and the SDK's tables do.
# ruff: noqa: RUF001

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import expect

from onboarding import services, translation_files
from onboarding.models import Banner, Guide, ResourceSection, Survey, Walkthrough
from tests.browser.conftest import Live, events_named, in_thread, new_tab, snippet, wait_for
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


# The demo's survey, resource center, banner and guide in French and Arabic (the tour's are
# seeded by seed_demo; these are the translator's part of this test).
SURFACES_IN: dict[str, dict[tuple[str, str], dict[str, str]]] = {
    "fr": {
        ("survey", "contacts-nps"): {
            "name": "Comment allons-nous ?",
            "thank_you": "Merci ! Notre équipe lit chaque réponse.",
            "questions.score.prompt": "Recommanderiez-vous Acme à un collègue ?",
            "questions.fix.prompt": "Que devrions-nous corriger d’abord ?",
            "questions.favourite.prompt": "Qu’aimez-vous le plus ?",
            "questions.favourite.choices.0": "Les campagnes",
            "questions.favourite.choices.1": "L’import de contacts",
            "questions.favourite.choices.2": "Les rapports",
            "questions.channels.prompt": "Où joignez-vous vos contacts ?",
            "questions.channels.choices.0": "Courriel",
            "questions.channels.choices.1": "Texto",
            "questions.channels.choices.2": "Réseaux sociaux",
        },
        ("resource_section", "getting-started-help"): {
            "title": "Bien démarrer",
            "launcher_label": "Aide",
            "items.welcome-tour.title": "Revoir la visite de bienvenue",
            "items.import-guide.title": "Importer vos contacts",
            "items.import-guide.body_markdown": "Exportez un CSV de votre CRM, puis cliquez sur "
            "**Importer des contacts**.",
        },
        ("resource_section", "whats-new"): {
            "title": "Nouveautés",
            "items.templates.title": "Modèles de campagne",
            "items.templates.body_markdown": "Lancez une campagne depuis l’un des **12 modèles**.",
            "items.help-center.title": "Centre d’aide Acme",
        },
        ("banner", "maintenance"): {
            "title": "Envois en pause dimanche, 02:00-03:00 UTC",
            "body_markdown": "Maintenance : les campagnes attendent et partent juste après.",
            "cta_label": "Voir vos campagnes",
        },
        ("guide", "no-contacts"): {
            "title": "Votre audience commence ici",
            "body_markdown": "Importez un CSV de contacts pour commencer.",
            "cta_label": "Importer des contacts",
        },
    },
    "ar": {
        ("survey", "contacts-nps"): {
            "name": "كيف حالنا؟",
            "thank_you": "شكرًا! يقرأ فريقنا كل إجابة.",
            "questions.score.prompt": "ما مدى احتمال أن توصي زميلًا باستخدام Acme؟",
            "questions.fix.prompt": "ما الذي يجب أن نصلحه أولًا؟",
            "questions.favourite.prompt": "ما أكثر ما يعجبك؟",
            "questions.favourite.choices.0": "الحملات",
            "questions.favourite.choices.1": "استيراد جهات الاتصال",
            "questions.favourite.choices.2": "التقارير",
            "questions.channels.prompt": "أين تتواصل مع جهات اتصالك؟",
            "questions.channels.choices.0": "البريد الإلكتروني",
            "questions.channels.choices.1": "الرسائل النصية",
            "questions.channels.choices.2": "وسائل التواصل الاجتماعي",
        },
        ("resource_section", "getting-started-help"): {
            "title": "البدء",
            "launcher_label": "مساعدة",
            "items.welcome-tour.title": "إعادة جولة الترحيب",
            "items.import-guide.title": "استيراد جهات الاتصال",
            "items.import-guide.body_markdown": "صدّر ملف CSV من نظامك، ثم انقر **استيراد**.",
        },
        ("resource_section", "whats-new"): {
            "title": "الجديد",
            "items.templates.title": "قوالب الحملات",
            "items.templates.body_markdown": "ابدأ حملة من أحد **12 قالبًا**.",
            "items.help-center.title": "مركز مساعدة Acme",
        },
        ("banner", "maintenance"): {
            "title": "يتوقف الإرسال يوم الأحد، 02:00-03:00 UTC",
            "body_markdown": "صيانة مجدولة: تنتظر الحملات ثم تُرسل مباشرة بعدها.",
            "cta_label": "عرض حملاتك",
        },
        ("guide", "no-contacts"): {
            "title": "جمهورك يبدأ من هنا",
            "body_markdown": "استورد ملف CSV لجهات الاتصال للبدء.",
            "cta_label": "استيراد جهات الاتصال",
        },
    },
}
SURVEY = "#feedback milepost-survey [role=region]"
PANEL = "milepost-widget [data-resource-panel]"
LAUNCHER = "milepost-widget [data-resource-center]"
# What a person reads or hears of the survey and the resource center: text and the labels.
WORDS_OF = """(el) => [el.innerText, ...[...el.querySelectorAll('*')].flatMap((e) =>
  ['aria-label', 'placeholder', 'title'].map((a) => e.getAttribute(a) || ''))].join(' | ')"""
LIVE_REGION = """() => document.querySelector('milepost-widget').shadowRoot
  .querySelector('[aria-live]').textContent"""
# The English the SDK and the demo's authors wrote: none of it may be left.
ENGLISH = (
    "Close", "Survey", "likely", "Next", "Send", "Skip", "Search", "Help", "results", "done",
    "replay", "Read more", "Choose an answer", "recommend", "campaign", "Campaign", "Reports",
    "Getting started", "What's new", "Import your contacts", "help center", "doing",
)  # fmt: skip


def translate_the_demo_surfaces(workspace: Any) -> None:
    def work() -> None:
        for locale, pieces in SURFACES_IN.items():
            for (kind, key), texts in pieces.items():
                translation_files.translation_set(
                    workspace=workspace, kind=kind, key=key, locale=locale, texts=texts.items()
                )
        for model in (Survey, ResourceSection, Banner, Guide):
            for obj in model.objects.filter(workspace=workspace):
                services.content_publish(obj=obj)

    in_thread(work)


def no_english(text: str) -> None:
    left = [word for word in ENGLISH if word in text]
    assert left == [], f"English left: {left} in {text!r}"


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("fr-FR", {"prompt": "Recommanderiez-vous Acme", "low": "Peu probable",
                   "next": "Suivant", "choose": "Choisissez d’abord une réponse.",
                   "choice": "Les rapports", "launcher": "?Aide", "search": "Rechercher",
                   "close": "Fermer l’aide", "replay": "(revoir la visite)",
                   "nothing": "Aucun résultat pour « zzz ».", "none": "Aucun résultat",
                   "one": "1 résultat", "read_more": "En savoir plus ↗",
                   "banner": "Envois en pause"}),
        ("ar", {"prompt": "توصي زميلًا", "low": "غير محتمل", "next": "التالي",
                "choose": "اختر إجابة أولًا.", "choice": "التقارير", "launcher": "?مساعدة",
                "search": "بحث", "close": "إغلاق المساعدة", "replay": "(إعادة الجولة)",
                "nothing": "لا شيء يطابق «zzz».", "none": "لا توجد نتائج",
                "one": "نتيجة واحدة", "read_more": "اقرأ المزيد ↗",
                "banner": "يتوقف الإرسال"}),
    ],
)  # fmt: skip
def test_the_survey_and_resource_center_speak_french_and_arabic_with_no_english_left(
    live: Live, browser: Any, locale: str, words: dict[str, str]
) -> None:
    translate_the_demo_surfaces(live.demo)
    tag = locale.split("-")[0]
    context = in_language(browser, locale)
    try:
        page = new_tab(context)
        page.goto(f"{live.demo_url}/contacts")
        survey = page.locator(SURVEY)
        group = survey.get_by_role("radiogroup")
        expect(group).to_contain_text(words["prompt"])
        expect(survey).to_contain_text(words["low"])
        # Sent with no answer: the error in the person's language.
        survey.get_by_role("button", name=words["next"]).click()
        expect(survey.locator(".er")).to_have_text(words["choose"])
        # Arrow keys in the NPS radio group follow the reading direction: in Arabic the scale
        # runs right to left, and Right goes to the lower score.
        group.get_by_role("radio", name="5").check()
        page.keyboard.press("ArrowRight")
        expect(group.get_by_role("radio", name="4" if tag == "ar" else "6")).to_be_checked()
        five, four = (box(group.locator("label").nth(n)) for n in (5, 4))
        assert (five["x"] < four["x"]) == (tag == "ar")
        no_english(survey.evaluate(WORDS_OF))
        banner = page.locator("milepost-banner [role=region]")
        expect(banner).to_contain_text(words["banner"])
        no_english(banner.evaluate(WORDS_OF))
        page.wait_for_timeout(300)
        page.screenshot(path=str(SCREENSHOTS / f"survey-{tag}.png"))
        group.get_by_role("radio", name="10").check()
        page.keyboard.press("Enter")
        # The choices in the person's language; the answer recorded is the source text.
        survey.get_by_role("radio", name=words["choice"]).check()
        no_english(survey.evaluate(WORDS_OF))
        page.keyboard.press("Enter")
        assert wait_for(
            lambda: events_named("$survey_answered", survey="contacts-nps", answer="Reports")
        )

        launcher = page.locator(LAUNCHER)
        expect(launcher).to_have_text(words["launcher"])
        launcher.click()
        panel = page.locator(PANEL)
        search = panel.get_by_role("searchbox")
        expect(search).to_have_attribute("placeholder", words["search"])
        expect(panel.get_by_role("button", name=words["close"])).to_be_visible()
        expect(panel.locator("[data-resource=welcome-tour]")).to_contain_text(words["replay"])
        article = panel.locator("[data-resource=import-guide]")
        article.get_by_role("button").click()
        expect(article).to_contain_text(words["read_more"])
        expect(panel.locator("[data-resource=checklist] .rk")).to_be_visible()
        no_english(panel.evaluate(WORDS_OF))
        page.wait_for_timeout(300)
        page.screenshot(path=str(SCREENSHOTS / f"resource-center-{tag}.png"))
        search.fill("zzz")
        expect(panel.locator(".rn")).to_have_text(words["nothing"])
        page.wait_for_function(f"() => ({LIVE_REGION})() === {words['none']!r}")
        search.fill(SURFACES_IN[tag][("resource_section", "whats-new")]["items.templates.title"])
        page.wait_for_function(f"() => ({LIVE_REGION})() === {words['one']!r}")
        assert page.errors == []
    finally:
        context.close()


def test_arrow_keys_move_the_arabic_tour_in_reading_order(live: Live, browser: Any) -> None:
    context = in_language(browser, "ar")
    try:
        page = new_tab(context)
        page.goto(f"{live.demo_url}/dashboard")
        card = page.locator(CARD)
        expect(card).to_have_attribute("data-step", "0")
        page.keyboard.press("ArrowLeft")  # right to left: Left reads on
        expect(card).to_have_attribute("data-step", "1")
        expect(card).to_contain_text("أرقامك")
        page.keyboard.press("ArrowRight")  # and Right goes back
        expect(card).to_have_attribute("data-step", "0")
    finally:
        context.close()


def test_arrow_keys_move_an_english_tour_left_to_right(live: Live, page: Any) -> None:
    page.goto(f"{live.demo_url}/dashboard")
    card = page.locator(CARD)
    expect(card).to_have_attribute("data-step", "0")
    page.keyboard.press("ArrowRight")
    expect(card).to_have_attribute("data-step", "1")
    page.keyboard.press("ArrowLeft")
    expect(card).to_have_attribute("data-step", "0")
