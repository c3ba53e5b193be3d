# ruff: noqa: RUF001 (the French translations use the typographic apostrophe)
"""`manage.py seed_demo`: the Acme demo workspace, its published content and an admin login.

Idempotent: a re-run creates only what is missing, never duplicates, never rotates keys and
never overwrites content an admin edited (pieces whose key exists are left alone).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from onboarding import queries, services, translation_files, translations
from onboarding.content_io import FORMAT, SECTIONS, content_import
from onboarding.models import (
    Banner,
    Guide,
    Journey,
    ProgressBar,
    ResourceSection,
    Survey,
    Tooltip,
    Translation,
    Walkthrough,
    Workspace,
    WorkspaceMember,
)
from onboarding.queries import MODEL_OF_KIND
from onboarding.services import workspace_create

DEMO_SLUG = "acme"
DEMO_USERNAME = "admin"
DEMO_PASSWORD = "milepost-demo"  # noqa: S105 (the embedded demo's documented login)

DEMO_CONTENT: dict[str, Any] = {
    "format": FORMAT,
    "journeys": [
        {
            "key": "trial-onboarding",
            "name": "Trial onboarding",
            "description": "From signup to a first campaign sent to imported contacts.",
            "starts_on": "signup",
            "milestones": [
                {
                    "key": "installed-js",
                    "name": "Installed the JavaScript snippet",
                    "phase": "setup",
                    "criterion": "server",
                },
                {
                    "key": "first-campaign",
                    "name": "Created a first campaign",
                    "phase": "discovery",
                    "criterion": "event",
                    "event_name": "campaign_created",
                    "min_count": 1,
                    "counts_toward_pql": True,
                },
                {
                    "key": "imported-contacts",
                    "name": "Imported contacts",
                    "phase": "activation",
                    "criterion": "event",
                    "event_name": "contacts_imported",
                    "min_count": 1,
                    "window_seconds": 7 * 24 * 3600,
                    "counts_toward_pql": True,
                },
            ],
        }
    ],
    "walkthroughs": [
        {
            "key": "welcome-tour",
            "name": "Welcome tour",
            "auto_start": True,
            "frequency": "until_completed",
            "steps": [
                {
                    "page_url_pattern": "/dashboard",
                    "selector": "",
                    "title": "Welcome to Acme",
                    "body_markdown": "Let's send your **first campaign** in under a minute.",
                    "advance_on": "next",
                },
                {
                    "page_url_pattern": "/dashboard",
                    "selector": "#stats-panel",
                    "title": "Your numbers",
                    "body_markdown": "Opens, clicks and replies show up here as they happen.",
                    "placement": "bottom",
                    "advance_on": "next",
                    "spotlight": True,
                },
                {
                    "page_url_pattern": "/dashboard",
                    "selector": "#nav-campaigns",
                    "title": "Campaigns",
                    "body_markdown": "Click **Campaigns** to create one.",
                    "placement": "bottom",
                    "advance_on": "target_click",
                },
                {
                    "page_url_pattern": "/campaigns",
                    "selector": "#create-campaign",
                    "title": "Create it",
                    "body_markdown": "Name your campaign, then click **Create**.",
                    "placement": "bottom",
                    "advance_on": "event",
                    "advance_event": "campaign_created",
                },
            ],
        }
    ],
    "tooltips": [
        {
            "key": "help-tip",
            "name": "Help button",
            "page_url_pattern": "/dashboard",
            "selector": "#help-button",
            "body_markdown": "Stuck? Our team answers here within minutes.",
            "trigger": "hotspot",
        },
        {
            "key": "import-tip",
            "name": "Import contacts",
            "page_url_pattern": "/contacts",
            "selector": "#import-contacts",
            "body_markdown": "Import a CSV of contacts to reach them in your campaigns.",
            "trigger": "hover",
            # The element-present trigger: the hint is there only while the list is empty.
            "when_present": "#contact-list .empty",
        },
    ],
    "progress_bars": [
        {
            "key": "getting-started",
            "name": "Getting started",
            "title": "Getting started with Acme",
            "journey": "trial-onboarding",
            "style": "checklist",
            "items": [
                {
                    "milestone": "installed-js",
                    "label": "Install the snippet",
                    "action": "open_url",
                    "url": "/dashboard",
                },
                {
                    "milestone": "first-campaign",
                    "label": "Create your first campaign",
                    "action": "start_walkthrough",
                    "walkthrough": "welcome-tour",
                },
                {
                    "milestone": "imported-contacts",
                    "label": "Import your contacts",
                    "action": "open_url",
                    "url": "/contacts",
                },
            ],
        }
    ],
    # The resource center: a "Help" launcher at the bottom left (the checklist is at the right).
    "resource_sections": [
        {
            "key": "getting-started-help",
            "name": "Getting started (help)",
            "title": "Getting started",
            "launcher_label": "Help",
            "position": "bottom-left",
            "priority": 10,
            "items": [
                {"key": "checklist", "kind": "checklist", "progress_bar": "getting-started"},
                {
                    "key": "welcome-tour",
                    "kind": "tour",
                    "title": "Replay the welcome tour",
                    "walkthrough": "welcome-tour",
                },
                {
                    "key": "import-guide",
                    "kind": "article",
                    "title": "Import your contacts",
                    "url": "/contacts",
                    "body_markdown": "Export a CSV from your CRM, then click **Import contacts** "
                    "on the Contacts page. Columns named *email* and *name* are matched for you.",
                },
            ],
        },
        {
            "key": "whats-new",
            "name": "What's new",
            "title": "What's new",
            "items": [
                {
                    "key": "templates",
                    "kind": "announcement",
                    "title": "Campaign templates",
                    "published_on": "2026-11-30",
                    "body_markdown": "Start a campaign from one of **12 templates**.",
                },
                {
                    "key": "help-center",
                    "kind": "link",
                    "title": "Acme help center",
                    "url": "https://docs.example.com/acme",
                },
            ],
        },
    ],
    "surveys": [
        {
            "key": "contacts-nps",
            "name": "How are we doing?",
            "display": "inline",
            "selector": "#feedback",
            "page_url_pattern": "/contacts",
            "thank_you": "Thank you! Our team reads every answer.",
            "questions": [
                {
                    "key": "score",
                    "type": "nps",
                    "prompt": "How likely are you to recommend Acme to a colleague?",
                    "follow_up": {"detractor": "fix", "promoter": "favourite"},
                },
                {"key": "fix", "type": "text", "prompt": "What should we fix first?"},
                {
                    "key": "favourite",
                    "type": "single_choice",
                    "prompt": "What do you like most?",
                    "choices": ["Campaigns", "Contact import", "Reports"],
                },
                {
                    "key": "channels",
                    "type": "multiple_choice",
                    "prompt": "Where do you reach your contacts?",
                    "choices": ["E-mail", "SMS", "Social"],
                    "optional": True,
                },
            ],
        }
    ],
    # Issue 16: a banner on every page (it waits while the welcome tour shows: one thing at a
    # time) and an empty-state guide inside the empty contact list.
    "banners": [
        {
            "key": "maintenance",
            "name": "Scheduled maintenance",
            "title": "Sending pauses on Sunday, 02:00-03:00 UTC",
            "body_markdown": "Scheduled maintenance: campaigns queue up and go out right after.",
            "cta_label": "See your campaigns",
            "cta_url": "/campaigns",
            "position": "top",
            "mode": "push",
        }
    ],
    "guides": [
        {
            "key": "no-contacts",
            "name": "No contacts yet",
            "page_url_pattern": "/contacts",
            "selector": "#contacts-empty",
            "title": "Your audience starts here",
            "body_markdown": "Campaigns need people. Import a CSV of contacts to get going.",
            "cta_label": "Import contacts",
            "cta_url": "/contacts#import",
        }
    ],
}

# The demo's content in French and Arabic. Steps are listed in order (their paths carry ids the
# database gives them); everything else by its path (onboarding/translations.py).
DEMO_TRANSLATIONS: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
    "fr": {
        ("walkthrough", "welcome-tour"): {
            "name": "Visite de bienvenue",
            "steps": [
                (
                    "Bienvenue sur Acme",
                    "Envoyons votre **première campagne** en moins d’une minute.",
                ),
                ("Vos chiffres", "Ouvertures, clics et réponses s’affichent ici en direct."),
                ("Campagnes", "Cliquez sur **Campagnes** pour en créer une."),
                ("Créez-la", "Nommez votre campagne, puis cliquez sur **Créer**."),
            ],
        },
        ("tooltip", "help-tip"): {
            "body_markdown": "Bloqué ? Notre équipe répond ici en quelques minutes."
        },
        ("tooltip", "import-tip"): {
            "body_markdown": "Importez un CSV de contacts pour les joindre dans vos campagnes."
        },
        ("progress_bar", "getting-started"): {
            "title": "Bien démarrer avec Acme",
            "items.installed-js.label": "Installer le snippet",
            "items.first-campaign.label": "Créer votre première campagne",
            "items.imported-contacts.label": "Importer vos contacts",
        },
        ("journey", "trial-onboarding"): {
            "name": "Prise en main de l’essai",
            "milestones.installed-js.name": "Snippet JavaScript installé",
            "milestones.first-campaign.name": "Première campagne créée",
            "milestones.imported-contacts.name": "Contacts importés",
        },
    },
    "ar": {
        ("walkthrough", "welcome-tour"): {
            "name": "جولة الترحيب",
            "steps": [
                ("مرحبًا بك في Acme", "لنرسل **حملتك الأولى** في أقل من دقيقة."),
                ("أرقامك", "تظهر هنا مرات الفتح والنقرات والردود فور حدوثها."),
                ("الحملات", "انقر على **الحملات** لإنشاء حملة."),
                ("أنشئها", "سمِّ حملتك، ثم انقر على **إنشاء**."),
            ],
        },
        ("tooltip", "help-tip"): {
            "body_markdown": "هل تحتاج إلى مساعدة؟ يرد فريقنا هنا خلال دقائق."
        },
        ("tooltip", "import-tip"): {
            "body_markdown": "استورد ملف CSV لجهات الاتصال للوصول إليها في حملاتك."
        },
        ("progress_bar", "getting-started"): {
            "title": "البدء مع Acme",
            "items.installed-js.label": "ثبّت المقتطف",
            "items.first-campaign.label": "أنشئ حملتك الأولى",
            "items.imported-contacts.label": "استورد جهات اتصالك",
        },
        ("journey", "trial-onboarding"): {
            "name": "بدء الفترة التجريبية",
            "milestones.installed-js.name": "تم تثبيت مقتطف JavaScript",
            "milestones.first-campaign.name": "تم إنشاء أول حملة",
            "milestones.imported-contacts.name": "تم استيراد جهات الاتصال",
        },
    },
}


def _demo_texts(document: dict[str, Any], texts: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, text) pairs: a walkthrough's steps are given in order, by position."""
    pairs = [(path, text) for path, text in texts.items() if path != "steps"]
    for step, (title, body) in zip(document.get("steps", []), texts.get("steps", []), strict=False):
        pairs += [(f"steps.{step['id']}.title", title), (f"steps.{step['id']}.body_markdown", body)]
    return pairs


def seed_translations(workspace: Workspace) -> list[str]:
    """Translate the demo content that has no translation in a language yet (an admin's own
    are never overwritten) and publish each piece whose draft differs from its published
    version only by translations (an admin's unpublished edits stay unpublished)."""
    done = []
    for locale, pieces in DEMO_TRANSLATIONS.items():
        for (kind, key), texts in pieces.items():
            if Translation.objects.filter(
                workspace=workspace, kind=kind, key=key, locale=locale
            ).exists():
                continue
            documents = dict(translations.KINDS[kind].documents(workspace.pk))
            if key not in documents:
                continue
            translation_files.translation_set(
                workspace=workspace,
                kind=kind,
                key=key,
                locale=locale,
                texts=_demo_texts(dict(documents[key]), texts),
            )
            done.append(f"translated {kind} {key} into {locale}")
    for kind, key in {piece for pieces in DEMO_TRANSLATIONS.values() for piece in pieces}:
        obj = MODEL_OF_KIND[kind].objects.filter(workspace=workspace, key=key).first()
        latest = queries.latest_version(obj=obj) if obj is not None else None
        if obj is None or latest is None:
            continue  # new: published with the rest
        draft = queries.content_snapshot(obj)
        untranslated = {k: v for k, v in draft.items() if k != "translations"}
        published = {k: v for k, v in latest.snapshot.items() if k != "translations"}
        if draft != latest.snapshot and untranslated == published:
            services.content_publish(obj=obj)
            done.append(f"published {kind} {key} with its translations")
    return done


_MODELS: dict[str, type[Any]] = {
    "journeys": Journey,
    "walkthroughs": Walkthrough,
    "tooltips": Tooltip,
    "progress_bars": ProgressBar,
    "resource_sections": ResourceSection,
    "surveys": Survey,
    "banners": Banner,
    "guides": Guide,
}


class Command(BaseCommand):
    help = "Create (if missing) the Acme demo workspace, its published content and the admin."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
        secret_key = None
        if workspace is None:
            workspace, keys = workspace_create(
                name="Acme", origins=[settings.DEMO_HOST_URL], slug=DEMO_SLUG
            )
            secret_key = keys["secret_key"]
        origin = settings.DEMO_HOST_URL.rstrip("/").lower()
        if origin not in workspace.allowed_origins or not workspace.enforce_identity_verification:
            workspace.allowed_origins = sorted({*workspace.allowed_origins, origin})
            workspace.enforce_identity_verification = True
            workspace.save(update_fields=["allowed_origins", "enforce_identity_verification"])

        missing = {
            section: [
                piece
                for piece in DEMO_CONTENT.get(section, [])
                if not _MODELS[section]
                .objects.filter(workspace=workspace, key=piece["key"])
                .exists()
            ]
            for section in SECTIONS
            if section in _MODELS
        }
        # Drafts first, then their translations, then one publish of each new piece.
        created = content_import(workspace=workspace, data={"format": FORMAT, **missing})
        translated = seed_translations(workspace)
        result = content_import(
            workspace=workspace, data={"format": FORMAT, **missing}, publish=True
        )

        User = get_user_model()
        admin = User.objects.filter(username=DEMO_USERNAME).first()
        if admin is None:
            admin = User.objects.create_superuser(DEMO_USERNAME, "admin@localhost", DEMO_PASSWORD)
        WorkspaceMember.objects.get_or_create(
            workspace=workspace, user=admin, defaults={"role": WorkspaceMember.Role.OWNER}
        )

        for change in [*created.changes, *translated, *result.changes]:
            self.stdout.write(f"  {change}")
        self.stdout.write(f"Admin:              {settings.PUBLIC_URL}/admin/")
        self.stdout.write(f"Login:              {DEMO_USERNAME} / {DEMO_PASSWORD}")
        self.stdout.write(f"Demo host app:      {settings.DEMO_HOST_URL}/dashboard")
        self.stdout.write(f"Publishable key:    {workspace.publishable_key}")
        if secret_key is not None:
            self.stdout.write(f"Secret key (shown once, only on the first run): {secret_key}")
