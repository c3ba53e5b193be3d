"""Content in several languages: which text fields of each kind of content translate, the
translations a published version carries, the language a person gets, and what is missing.

Each kind of content registers its translatable fields once (`register`), as paths into the
document that describes it: `title`, or `steps[id].title` for the `title` of every item of the
`steps` list, each item named by its `id`; `questions[key].choices[]` for each string of the
`choices` list of every question, named by its position (`questions.q1.choices.0`). A
translation is stored per workspace, kind, content
key, concrete path (`steps.12.title`) and language (models.Translation) while it is a draft;
publishing copies the content's translations into the published snapshot (`translations`:
{language: {path: text}}), so what live users read changes only on publish, and restoring a
version brings its translations back. A field whose name ends in `_markdown` is published with
its rendered `_html` twin. A list of strings is localised into a twin list, `choices` into
`choice_labels`, and keeps its source strings: they are the values answers record, the same
in every language.

The language a person gets: their locale trait (Workspace.locale_trait, default `locale`),
else their browser's language (`hello.locale`), resolved against the languages the
workspace's live content is translated into, dropping subtags one at a time (pt-BR, then pt),
else the workspace's default language (the one content is written in). Inside the resolved
language each field falls back on its own along the same chain, then to the source text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from onboarding import validation
from onboarding.markdown import render_markdown
from onboarding.models import PublishedVersion, Translation, Workspace

# Longest translation stored (characters); the source fields are shorter still.
MAX_TEXT_CHARS = 20_000

_SPEC = re.compile(r"(?:(?P<list>[a-z_]+)\[(?P<id>[a-z_]+)\]\.)?(?P<field>[a-z_]+)(?P<each>\[\])?")


@dataclass(frozen=True)
class TranslatableKind:
    """A kind of content whose text fields translate. `documents(workspace_id)` yields each
    draft's key and its document (the dict the field paths point into: the content's
    snapshot for published kinds)."""

    kind: str
    fields: tuple[str, ...]
    documents: Callable[[int], Iterable[tuple[str, Mapping[str, Any]]]]
    published: bool = True

    @property
    def specs(self) -> list[Spec]:
        """Each field as (list, id field, field, each): `steps[id].title` -> (steps, id,
        title, False); `questions[key].choices[]` -> (questions, key, choices, True)."""
        return [_spec(spec) for spec in self.fields]


Spec = tuple[str | None, str | None, str, bool]


def _spec(spec: str) -> Spec:
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise ValueError(
            f"{spec!r} is not a field path such as title, steps[id].title or "
            "questions[key].choices[]"
        )
    return match["list"], match["id"], match["field"], match["each"] is not None


KINDS: dict[str, TranslatableKind] = {}


def register(
    *,
    kind: str,
    fields: Iterable[str],
    documents: Callable[[int], Iterable[tuple[str, Mapping[str, Any]]]],
    published: bool = True,
) -> None:
    """Make `kind`'s text fields translatable. `published=False` for content that is not
    versioned (engagement's messages): its translations apply as soon as they are saved."""
    fields = tuple(fields)
    for spec in fields:
        _spec(spec)
    KINDS[kind] = TranslatableKind(kind, fields, documents, published)


# Field paths ---------------------------------------------------------------------------------


def _items(document: Mapping[str, Any], spec: Spec) -> Iterator[tuple[str, Any, str]]:
    """(concrete path, the dict holding the field, field name) for each place `spec` names
    (for a list of strings, the dict holding the list)."""
    name, ident, field, _ = spec
    if name is None or ident is None:
        yield field, document, field
        return
    for item in document.get(name) or []:
        if isinstance(item, dict) and item.get(ident) not in (None, ""):
            yield f"{name}.{item[ident]}.{field}", item, field


def _texts(holder: Mapping[str, Any], field: str, each: bool) -> Iterator[tuple[str, str]]:
    """(path suffix, text) of one field: "" and the string, or each string of a list with its
    position (".0", ".1"…)."""
    value = holder.get(field)
    if not each:
        if isinstance(value, str):
            yield "", value
        return
    for index, text in enumerate(value if isinstance(value, list) else []):
        if isinstance(text, str):
            yield f".{index}", text


def _labels_twin(field: str) -> str:
    """Where a list of strings is localised: `choices` -> `choice_labels`."""
    return f"{field.removesuffix('s')}_labels"


def source_texts(kind: str, document: Mapping[str, Any]) -> dict[str, str]:
    """Every translatable text of one piece of content: {path: source text}, in field order;
    empty fields are left out (nothing to translate)."""
    texts: dict[str, str] = {}
    for spec in KINDS[kind].specs:
        for path, holder, field in _items(document, spec):
            for suffix, value in _texts(holder, field, spec[3]):
                if value.strip():
                    texts[path + suffix] = value
    return texts


def _html_twin(path: str) -> str | None:
    return path[: -len("_markdown")] + "_html" if path.endswith("_markdown") else None


# Publishing ------------------------------------------------------------------------------------


def snapshot_translations(
    *, workspace_id: int, kind: str, key: str, document: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    """The translations a published version of this content carries: {language: {path: text}}
    for the paths the content still has (a translation of a deleted step stays a draft)."""
    sources = source_texts(kind, document)
    published: dict[str, dict[str, str]] = {}
    rows = Translation.objects.filter(workspace_id=workspace_id, kind=kind, key=key)
    for row in rows.order_by("locale", "path"):
        if row.path not in sources or not row.text:
            continue
        texts = published.setdefault(row.locale, {})
        texts[row.path] = row.text
        twin = _html_twin(row.path)
        if twin:
            texts[twin] = render_markdown(row.text)
    return published


def translations_restore(
    *, workspace_id: int, kind: str, key: str, snapshot: Mapping[str, Any]
) -> None:
    """Make the draft translations those of a restored version (restoring is a new publish)."""
    sources = source_texts(kind, snapshot)
    Translation.objects.filter(workspace_id=workspace_id, kind=kind, key=key).delete()
    Translation.objects.bulk_create(
        Translation(
            workspace_id=workspace_id,
            kind=kind,
            key=key,
            path=path,
            locale=locale,
            text=text,
            source_text=sources.get(path, ""),
        )
        for locale, texts in (snapshot.get("translations") or {}).items()
        for path, text in texts.items()
        if path in sources
    )


# The language a person gets ------------------------------------------------------------------


def normalise(tag: Any) -> str | None:
    """A BCP 47 tag in its usual case (pt-BR, zh-Hant-TW), `_` read as `-`; None if it is not
    one (a trait is the host's data: a malformed one is ignored, not refused)."""
    if not isinstance(tag, str):
        return None
    tag = tag.strip().replace("_", "-")
    try:
        validation.check_locale(tag)
    except ValidationError:
        return None
    parts = tag.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif len(part) in (2, 3) and len(out) >= 1:
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


def requested_locale(*, workspace: Workspace, traits: Any, browser: Any) -> str:
    """The language a person asks for: their locale trait, else their browser's; "" if none."""
    trait = traits.get(workspace.locale_trait) if isinstance(traits, dict) else None
    return normalise(trait) or normalise(browser) or ""


def first_accepted(accept_language: Any) -> str | None:
    """The most preferred language of an Accept-Language header ("pt-BR,pt;q=0.9,en;q=0.8"
    -> "pt-BR"): what the browser's navigator.language says, sent with every request."""
    if not isinstance(accept_language, str):
        return None
    best: tuple[float, str] | None = None
    for part in accept_language.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        tag = normalise(tag) or ""
        if tag and quality > 0 and (best is None or quality > best[0]):
            best = (quality, tag)
    return best[1] if best else None


def fallback_chain(tag: str) -> list[str]:
    """pt-BR -> [pt-BR, pt]; zh-Hant-TW -> [zh-Hant-TW, zh-Hant, zh]."""
    parts = tag.split("-") if tag else []
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


@dataclass(frozen=True)
class Resolved:
    """The language a person gets (`tag`) and the translations tried per field, in order
    (empty: the source text, written in the workspace's default language)."""

    tag: str
    chain: tuple[str, ...]


def resolve(*, requested: str, offered: Iterable[str], default: str) -> Resolved:
    lowered = {tag.lower(): tag for tag in offered}
    default_chain = {t.lower() for t in fallback_chain(default)}
    for candidate in fallback_chain(requested):
        if candidate.lower() in default_chain:
            return Resolved(default, ())
        if candidate.lower() in lowered:
            tag = lowered[candidate.lower()]
            return Resolved(
                tag, tuple(lowered[c.lower()] for c in fallback_chain(tag) if c.lower() in lowered)
            )
    return Resolved(default, ())


def offered_locales(versions: Iterable[PublishedVersion]) -> set[str]:
    """The languages live content is translated into (any field of any piece)."""
    return {tag for v in versions for tag in (v.snapshot.get("translations") or {})}


# Localising published content ------------------------------------------------------------------


def localise(kind: str, document: Mapping[str, Any], chain: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `document` with each translatable field in the first language of `chain`
    that translates it (the source text otherwise). Lists are copied, items shallowly."""
    translations = document.get("translations") or {}
    merged: dict[str, str] = {}
    for tag in reversed(chain):
        merged.update(translations.get(tag) or {})
    out = dict(document)
    if not merged or kind not in KINDS:
        return out
    copied: set[str] = set()
    for spec in KINDS[kind].specs:
        name = spec[0]
        if name is not None and name not in copied:
            out[name] = [dict(i) if isinstance(i, dict) else i for i in out.get(name) or []]
            copied.add(name)
        for path, holder, field in _items(out, spec):
            if spec[3]:
                labels = [
                    merged.get(path + suffix, text) for suffix, text in _texts(holder, field, True)
                ]
                if labels != holder.get(field):
                    holder[_labels_twin(field)] = labels
                continue
            if path in merged:
                holder[field] = merged[path]
                twin = _html_twin(path)
                if twin and twin in merged:
                    holder[_html_twin(field) or field] = merged[twin]
    return out


def localised_version(version: PublishedVersion, chain: tuple[str, ...]) -> dict[str, Any]:
    """`localise` of a published version's snapshot. A version is immutable, so each copy is
    kept on the instance, which the process's live content holds until the next publish."""
    if not chain or not version.snapshot.get("translations"):
        return version.snapshot
    copies: dict[tuple[str, ...], dict[str, Any]] = vars(version).setdefault("_localised", {})
    if chain not in copies:
        copies[chain] = localise(version.kind, version.snapshot, chain)
    return copies[chain]


def localise_journeys(
    entries: list[dict[str, Any]], versions: Iterable[PublishedVersion], chain: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Journey progress entries (welcome `journeys`, `progress` pushes) with the journey's and
    its milestones' names in the person's language."""
    if not chain:
        return entries
    journeys = {
        v.key: localised_version(v, chain)
        for v in versions
        if v.kind == PublishedVersion.Kind.JOURNEY and v.snapshot.get("translations")
    }
    out = []
    for entry in entries:
        journey = journeys.get(entry["journey"]["key"])
        if journey is None:
            out.append(entry)
            continue
        names = {m["key"]: m["name"] for m in journey.get("milestones", [])}
        out.append(
            {
                **entry,
                "journey": {**entry["journey"], "name": journey["name"]},
                "milestones": [
                    {**m, "name": names.get(m["key"], m["name"])} for m in entry["milestones"]
                ],
            }
        )
    return out


# What is untranslated ------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemStatus:
    """One piece of content in one language: how many of its texts are translated, and
    which are missing or outdated (translated from a source text that has changed since)."""

    kind: str
    key: str
    locale: str
    total: int
    missing: tuple[str, ...]
    outdated: tuple[str, ...]

    @property
    def translated(self) -> int:
        return self.total - len(self.missing)


def workspace_locales(*, workspace: Workspace) -> list[str]:
    """The languages the workspace translates into: every one a translation exists for."""
    tags = set(
        Translation.objects.filter(workspace=workspace).values_list("locale", flat=True).distinct()
    )
    return sorted(tags - {workspace.default_locale})


def translation_status(
    *, workspace: Workspace, locales: Iterable[str] | None = None
) -> list[ItemStatus]:
    """Per piece of content (drafts, every registered kind) and language: what is missing."""
    tags = list(locales) if locales is not None else workspace_locales(workspace=workspace)
    stored: dict[tuple[str, str, str], dict[str, Translation]] = {}
    for row in Translation.objects.filter(workspace=workspace, locale__in=tags):
        stored.setdefault((row.kind, row.key, row.locale), {})[row.path] = row
    status = []
    for kind, registered in sorted(KINDS.items()):
        for key, document in registered.documents(workspace.pk):
            sources = source_texts(kind, document)
            if not sources:
                continue
            for tag in tags:
                rows = stored.get((kind, key, tag), {})
                status.append(
                    ItemStatus(
                        kind=kind,
                        key=key,
                        locale=tag,
                        total=len(sources),
                        missing=tuple(p for p in sources if p not in rows or not rows[p].text),
                        outdated=tuple(
                            p
                            for p, row in rows.items()
                            if p in sources and row.text and row.source_text != sources[p]
                        ),
                    )
                )
    return status


# Content that is not versioned ---------------------------------------------------------------


def draft_translations(*, workspace_id: int, kind: str, key: str) -> dict[str, dict[str, str]]:
    """{language: {path: text}} of one piece of content's saved translations: what content
    that is not published (engagement's messages) is localised with."""
    found: dict[str, dict[str, str]] = {}
    for locale, path, text in Translation.objects.filter(
        workspace_id=workspace_id, kind=kind, key=key
    ).values_list("locale", "path", "text"):
        if text:
            found.setdefault(locale, {})[path] = text
    return found


def localise_for_person(
    *,
    kind: str,
    document: Mapping[str, Any],
    texts: Mapping[str, Mapping[str, str]],
    requested: str,
    default: str,
) -> dict[str, Any]:
    """`document` in the language a person asked for, from `draft_translations`."""
    resolved = resolve(requested=requested, offered=texts.keys(), default=default)
    return localise(kind, {**document, "translations": texts}, resolved.chain)
