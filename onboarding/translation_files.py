"""Translations as files translators use: gettext PO (polib), XLIFF 1.2, CSV and JSON, for one
language at a time, exported from and imported into the drafts (publishing puts them live).

Every text is named by kind, content key and field path (`walkthrough`, `welcome-tour`,
`steps.12.title`); in a PO file that is the entry's msgctxt
`walkthrough:welcome-tour:steps.12.title`, its msgid the source text and its msgstr the
translation; in XLIFF it is the trans-unit's id, with <source> and <target>. Importing is all
or nothing and idempotent: every entry is checked first and any problem refuses the whole file,
each named by line (CSV, PO), trans-unit (XLIFF) or index (JSON) and field; importing the same
file twice changes nothing the second time. An empty translation is skipped (an untranslated PO
entry), never a deletion.
"""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import polib
from django.core.exceptions import ValidationError
from django.db import transaction

from onboarding import translations
from onboarding.models import Translation, Workspace

FORMATS = ("po", "xliff", "csv", "json")
CONTENT_TYPES = {
    "po": "text/x-gettext-translation",
    "xliff": "application/x-xliff+xml",
    "csv": "text/csv",
    "json": "application/json",
}
# File name suffixes read as each format.
SUFFIXES = {"po": "po", "xliff": "xliff", "xlf": "xliff", "csv": "csv", "json": "json"}
CSV_COLUMNS = ["kind", "key", "path", "source", "translation"]
# The largest file imported (bytes) and the most entries in one.
MAX_FILE_BYTES = 5_000_000
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class Unit:
    kind: str
    key: str
    path: str
    source: str
    text: str

    @property
    def context(self) -> str:
        return f"{self.kind}:{self.key}:{self.path}"


def units(*, workspace: Workspace, locale: str) -> list[Unit]:
    """Every translatable text of the workspace's drafts with its translation (or "")."""
    stored = {
        (row.kind, row.key, row.path): row.text
        for row in Translation.objects.filter(workspace=workspace, locale=locale)
    }
    return [
        Unit(kind, key, path, source, stored.get((kind, key, path), ""))
        for kind, registered in sorted(translations.KINDS.items())
        for key, document in registered.documents(workspace.pk)
        for path, source in translations.source_texts(kind, document).items()
    ]


def _checked_locale(locale: Any) -> str:
    tag = translations.normalise(locale)
    if tag is None:
        raise ValidationError({"locale": [f"{locale!r} is not a language tag, e.g. fr or pt-BR."]})
    return tag


def export(*, workspace: Workspace, locale: str, fmt: str) -> str:
    tag = _checked_locale(locale)
    if fmt not in FORMATS:
        raise ValidationError({"format": [f"Choose one of {', '.join(FORMATS)}."]})
    found = units(workspace=workspace, locale=tag)
    if fmt == "json":
        return json.dumps(
            {
                "locale": tag,
                "source_locale": workspace.default_locale,
                "translations": [
                    {"kind": u.kind, "key": u.key, "path": u.path, "source": u.source,
                     "translation": u.text}
                    for u in found
                ],
            },
            ensure_ascii=False,
            indent=2,
        )  # fmt: skip
    if fmt == "xliff":
        return _xliff(workspace=workspace, locale=tag, found=found)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows([u.kind, u.key, u.path, u.source, u.text] for u in found)
        return out.getvalue()
    po = polib.POFile(wrapwidth=0)
    po.metadata = {
        "Project-Id-Version": workspace.slug,
        "Language": tag,
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=UTF-8",
        "Content-Transfer-Encoding": "8bit",
        "X-Source-Language": workspace.default_locale,
    }
    for u in found:
        po.append(polib.POEntry(msgctxt=u.context, msgid=u.source, msgstr=u.text))
    return str(po)


# Importing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    where: str  # "line 4", "translations[2]": how the error names it
    kind: str
    key: str
    path: str
    text: str


@dataclass(frozen=True)
class ImportResult:
    locale: str
    created: int
    updated: int
    unchanged: int
    skipped_empty: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "locale": self.locale,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped_empty": self.skipped_empty,
        }


def _parse_po(text: str) -> tuple[str | None, list[Entry]]:
    try:
        po = polib.pofile(text)
    except (OSError, ValueError) as error:
        raise ValidationError({"file": [f"Not a PO file: {error}"]}) from None
    entries = []
    for e in po:
        where = f"line {e.linenum}"
        parts = (e.msgctxt or "").split(":", 2)
        if len(parts) != 3:
            raise ValidationError(
                {"file": [f"{where}: msgctxt {e.msgctxt!r} is not kind:key:path, as exported."]}
            )
        if "fuzzy" in e.flags:
            continue  # a translator's guess, not a translation
        entries.append(Entry(where, parts[0], parts[1], parts[2], e.msgstr))
    return po.metadata.get("Language"), entries


def _parse_csv(text: str) -> list[Entry]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [
        c for c in ("kind", "key", "path", "translation") if c not in (reader.fieldnames or [])
    ]
    if missing:
        raise ValidationError(
            {"file": [f"line 1: the CSV needs the columns {', '.join(missing)}."]}
        )
    return [
        Entry(
            f"line {reader.line_num}",
            row["kind"] or "",
            row["key"] or "",
            row["path"] or "",
            row["translation"] or "",
        )
        for row in reader
    ]


def _parse_json(text: str) -> tuple[str | None, list[Entry]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationError({"file": [f"Not JSON: {error}"]}) from None
    if not isinstance(data, dict) or not isinstance(data.get("translations"), list):
        raise ValidationError({"translations": ["Give a list of translations."]})
    entries = []
    for index, item in enumerate(data["translations"]):
        where = f"translations[{index}]"
        if not isinstance(item, dict):
            raise ValidationError({where: ["Each translation is an object."]})
        for field in ("kind", "key", "path", "translation"):
            if not isinstance(item.get(field), str):
                raise ValidationError({f"{where}.{field}": ["A string is required."]})
        entries.append(Entry(where, item["kind"], item["key"], item["path"], item["translation"]))
    locale = data.get("locale")
    return (locale if isinstance(locale, str) else None), entries


# XLIFF 1.2 ------------------------------------------------------------------------------------
# A strict subset, what translation tools (Weblate, Crowdin, Phrase, Lokalise, OmegaT) read and
# write for plain text: one <file> with source-language and target-language, a <body> of
# <trans-unit id="kind:key:path"> (optionally inside <group>s), each with a <source> and an
# optional <target> of plain text. Refused, naming the unit: inline markup in a <target> (<g>,
# <x/>, <ph>…: our texts have none), a unit without id. A DOCTYPE is refused outright, so no
# entity is ever expanded. A target whose state is "new" or "needs-translation" is skipped, as
# a fuzzy PO entry is.

XLIFF_NS = "urn:oasis:names:tc:xliff:document:1.2"
_X = f"{{{XLIFF_NS}}}"
_UNTRANSLATED_STATES = {"new", "needs-translation"}


def _xliff(*, workspace: Workspace, locale: str, found: list[Unit]) -> str:
    # Written with plain names under an xmlns attribute: the file's one (default) namespace.
    root = ET.Element("xliff", {"xmlns": XLIFF_NS, "version": "1.2"})
    file = ET.SubElement(
        root,
        "file",
        {
            "original": workspace.slug,
            "source-language": workspace.default_locale,
            "target-language": locale,
            "datatype": "plaintext",
        },
    )
    body = ET.SubElement(file, "body")
    for u in found:
        unit = ET.SubElement(body, "trans-unit", {"id": u.context, "xml:space": "preserve"})
        ET.SubElement(unit, "source").text = u.source
        if u.text:
            ET.SubElement(unit, "target", {"state": "translated"}).text = u.text
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _plain(element: ET.Element, where: str) -> str:
    if len(element):
        raise ValidationError(
            {"file": [f"{where}: <{element[0].tag.removeprefix(_X)}> inside "
                      f"<{element.tag.removeprefix(_X)}>: only plain text is read."]}
        )  # fmt: skip
    return element.text or ""


def _parse_xliff(text: str) -> tuple[str | None, list[Entry]]:
    if "<!DOCTYPE" in text.upper():
        raise ValidationError({"file": ["Not read: an XLIFF file has no DOCTYPE."]})
    try:
        # No DTD or entity can be in the text (refused above); expat expands nothing else.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as error:
        raise ValidationError({"file": [f"Not XML: {error}"]}) from None
    if root.tag != f"{_X}xliff" or root.get("version") != "1.2":
        raise ValidationError(
            {"file": [f"Not XLIFF 1.2: the root is <{root.tag}> (version "
                      f"{root.get('version')!r}); expected <xliff version=\"1.2\"> in {XLIFF_NS}."]}
        )  # fmt: skip
    files = root.findall(f"{_X}file")
    if len(files) != 1:
        raise ValidationError({"file": [f"{len(files)} <file> elements; give exactly one."]})
    entries = []
    for index, unit in enumerate(files[0].iter(f"{_X}trans-unit")):
        ident = unit.get("id") or ""
        where = f"trans-unit {ident!r}" if ident else f"trans-unit #{index + 1}"
        parts = ident.split(":", 2)
        if len(parts) != 3:
            raise ValidationError({"file": [f"{where}: the id is not kind:key:path, as exported."]})
        target = unit.find(f"{_X}target")
        if target is None or target.get("state") in _UNTRANSLATED_STATES:
            continue
        entries.append(Entry(where, parts[0], parts[1], parts[2], _plain(target, where)))
    return files[0].get("target-language"), entries


def parse(*, text: str, fmt: str) -> tuple[str | None, list[Entry]]:
    """The entries of a file, and the language it names (PO header, JSON `locale`)."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise ValidationError({"file": [f"The file is larger than {MAX_FILE_BYTES:,} bytes."]})
    if fmt == "po":
        locale, entries = _parse_po(text)
    elif fmt == "xliff":
        locale, entries = _parse_xliff(text)
    elif fmt == "csv":
        locale, entries = None, _parse_csv(text)
    elif fmt == "json":
        locale, entries = _parse_json(text)
    else:
        raise ValidationError({"format": [f"Choose one of {', '.join(FORMATS)}."]})
    if len(entries) > MAX_ENTRIES:
        raise ValidationError(
            {"file": [f"{len(entries):,} entries; the limit is {MAX_ENTRIES:,}."]}
        )
    return locale, entries


def format_of(filename: str) -> str:
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in SUFFIXES:
        raise ValidationError(
            {"format": [f"{filename!r}: name a .po, .xliff (.xlf), .csv or .json file."]}
        )
    return SUFFIXES[suffix]


@transaction.atomic
def translations_import(
    *, workspace: Workspace, text: str, fmt: str, locale: str | None = None
) -> ImportResult:
    """Check every entry of the file, then store its translations for one language (the
    `locale` given, else the one the file names). Refuses the whole file, writing nothing,
    when any entry names content, a field or a language that is not there."""
    named, entries = parse(text=text, fmt=fmt)
    if locale and named and translations.normalise(named) != translations.normalise(locale):
        raise ValidationError(
            {"locale": [f"The file is in {named!r} but {locale!r} was asked for."]}
        )
    tag = _checked_locale(locale or named)
    if tag == workspace.default_locale:
        raise ValidationError(
            {"locale": [f"{tag} is the workspace's default language: edit the content itself."]}
        )
    sources: dict[tuple[str, str], dict[str, str]] = {}
    for kind, registered in translations.KINDS.items():
        for key, document in registered.documents(workspace.pk):
            sources[(kind, key)] = translations.source_texts(kind, document)
    problems: list[str] = []
    seen: dict[tuple[str, str, str], str] = {}
    for entry in entries:
        if entry.kind not in translations.KINDS:
            problems.append(f"{entry.where}: kind: {entry.kind!r} is not a kind of content.")
        elif (entry.kind, entry.key) not in sources:
            problems.append(f"{entry.where}: key: no {entry.kind} {entry.key!r} in this workspace.")
        elif entry.path not in sources[(entry.kind, entry.key)]:
            problems.append(
                f"{entry.where}: path: {entry.kind} {entry.key!r} has no text at {entry.path!r}."
            )
        elif len(entry.text) > translations.MAX_TEXT_CHARS:
            problems.append(
                f"{entry.where}: translation: longer than {translations.MAX_TEXT_CHARS:,} "
                "characters."
            )
        ident = (entry.kind, entry.key, entry.path)
        if ident in seen and seen[ident] != entry.text:
            problems.append(f"{entry.where}: path: {entry.path!r} is translated twice.")
        seen[ident] = entry.text
    if problems:
        raise ValidationError(problems)
    existing = {
        (row.kind, row.key, row.path): row
        for row in Translation.objects.filter(workspace=workspace, locale=tag)
    }
    created = updated = unchanged = skipped = 0
    for (kind, key, path), text in seen.items():
        if not text:
            skipped += 1
            continue
        source = sources[(kind, key)][path]
        row = existing.get((kind, key, path))
        if row is None:
            Translation.objects.create(
                workspace=workspace, kind=kind, key=key, path=path, locale=tag, text=text,
                source_text=source,
            )  # fmt: skip
            created += 1
        elif row.text == text and row.source_text == source:
            unchanged += 1
        else:
            row.text, row.source_text = text, source
            row.save(update_fields=["text", "source_text", "updated_at"])
            updated += 1
    return ImportResult(tag, created, updated, unchanged, skipped)


def translation_set(
    *, workspace: Workspace, kind: str, key: str, locale: str, texts: Iterable[tuple[str, str]]
) -> ImportResult:
    """Save translations of one piece of content (admin's form, the API): the same checks."""
    body = json.dumps(
        {
            "locale": locale,
            "translations": [
                {"kind": kind, "key": key, "path": path, "translation": text}
                for path, text in texts
            ],
        }
    )
    return translations_import(workspace=workspace, text=body, fmt="json", locale=locale)
