"""The SDK's own words (buttons, counters, labels) in each language it speaks, sent with
`welcome` for the person's resolved language so the core bundle carries no English of its own.

Each table is a list in the order of `widget/src/i18n.ts` (`S`); `{0}` and `{1}` are filled in
by the SDK, numbers formatted with the browser's Intl for the language. The counter is wrapped
in Unicode first-strong isolates (U+2068 … U+2069) so "2 of 3" keeps its order inside a
right-to-left page and "٢ من ٣" inside a left-to-right one.
"""

from __future__ import annotations

# Scripts written right to left (ISO 639 language subtags).
RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur", "ps", "sd", "ug", "yi", "dv", "ckb"})

_ORDER = (
    "next", "back", "done", "of", "close", "show_me", "activate", "step", "complete",
    "open_hint", "got_it", "close_hint", "item_done", "item_to_do", "start", "start_item",
    "reached", "close_message",
)  # fmt: skip

_TABLES: dict[str, dict[str, str]] = {
    "en": {
        "next": "Next", "back": "Back", "done": "Done", "of": "{0} of {1}", "close": "Close {0}",
        "tour": "Tour", "show_me": "Show me", "activate": "Activate: {0}",
        "step": "Step {0}: {1}", "complete": "{0} complete", "open_hint": "Open hint",
        "got_it": "Got it", "close_hint": "Close hint", "item_done": " (done)",
        "item_to_do": " (to do)", "start": "Start", "start_item": "Start: {0}",
        "reached": "{0}: done!", "close_message": "Close message",
    },
    "fr": {
        "next": "Suivant", "back": "Retour", "done": "Terminer", "of": "{0} sur {1}",
        "close": "Fermer {0}", "tour": "Visite", "show_me": "Montrez-moi",
        "activate": "Activer : {0}", "step": "Étape {0} : {1}", "complete": "{0} terminé",
        "open_hint": "Ouvrir l’astuce", "got_it": "Compris", "close_hint": "Fermer l’astuce",
        "item_done": " (fait)", "item_to_do": " (à faire)", "start": "Commencer",
        "start_item": "Commencer : {0}", "reached": "{0} : fait !",
        "close_message": "Fermer le message",
    },
    "de": {
        "next": "Weiter", "back": "Zurück", "done": "Fertig", "of": "{0} von {1}",
        "close": "{0} schließen", "tour": "Tour", "show_me": "Zeig es mir",
        "activate": "Aktivieren: {0}", "step": "Schritt {0}: {1}",
        "complete": "{0} abgeschlossen", "open_hint": "Hinweis öffnen", "got_it": "Verstanden",
        "close_hint": "Hinweis schließen", "item_done": " (erledigt)",
        "item_to_do": " (offen)", "start": "Starten", "start_item": "Starten: {0}",
        "reached": "{0}: geschafft!", "close_message": "Nachricht schließen",
    },
    "es": {
        "next": "Siguiente", "back": "Atrás", "done": "Listo", "of": "{0} de {1}",
        "close": "Cerrar {0}", "tour": "Recorrido", "show_me": "Muéstramelo",
        "activate": "Activar: {0}", "step": "Paso {0}: {1}", "complete": "{0} completado",
        "open_hint": "Abrir consejo", "got_it": "Entendido", "close_hint": "Cerrar consejo",
        "item_done": " (hecho)", "item_to_do": " (pendiente)", "start": "Empezar",
        "start_item": "Empezar: {0}", "reached": "{0}: ¡hecho!",
        "close_message": "Cerrar mensaje",
    },
    "pt": {
        "next": "Próximo", "back": "Voltar", "done": "Concluir", "of": "{0} de {1}",
        "close": "Fechar {0}", "tour": "Tour", "show_me": "Mostre-me",
        "activate": "Ativar: {0}", "step": "Passo {0}: {1}", "complete": "{0} concluído",
        "open_hint": "Abrir dica", "got_it": "Entendi", "close_hint": "Fechar dica",
        "item_done": " (feito)", "item_to_do": " (a fazer)", "start": "Começar",
        "start_item": "Começar: {0}", "reached": "{0}: feito!",
        "close_message": "Fechar mensagem",
    },
    "ar": {
        "next": "التالي", "back": "السابق", "done": "تم", "of": "{0} من {1}",
        "close": "إغلاق {0}", "tour": "الجولة", "show_me": "أرني",
        "activate": "تفعيل: {0}", "step": "الخطوة {0}: {1}", "complete": "اكتملت {0}",
        "open_hint": "فتح التلميح", "got_it": "فهمت", "close_hint": "إغلاق التلميح",
        "item_done": " (تم)", "item_to_do": " (للقيام به)", "start": "ابدأ",
        "start_item": "ابدأ: {0}", "reached": "{0}: تم!", "close_message": "إغلاق الرسالة",
    },
    "he": {
        "next": "הבא", "back": "הקודם", "done": "סיום", "of": "{0} מתוך {1}",
        "close": "סגירת {0}", "tour": "סיור", "show_me": "הראו לי",
        "activate": "הפעלה: {0}", "step": "שלב {0}: {1}", "complete": "{0} הושלם",
        "open_hint": "פתיחת רמז", "got_it": "הבנתי", "close_hint": "סגירת רמז",
        "item_done": " (בוצע)", "item_to_do": " (לביצוע)", "start": "התחלה",
        "start_item": "התחלה: {0}", "reached": "{0}: בוצע!", "close_message": "סגירת ההודעה",
    },
    "ja": {
        "next": "次へ", "back": "戻る", "done": "完了", "of": "{0} / {1}",
        "close": "{0}を閉じる", "tour": "ツアー", "show_me": "表示する",
        "activate": "実行: {0}", "step": "ステップ {0}: {1}", "complete": "{0} 完了",
        "open_hint": "ヒントを開く", "got_it": "了解", "close_hint": "ヒントを閉じる",
        "item_done": "（完了）", "item_to_do": "（未完了）", "start": "開始",
        "start_item": "開始: {0}", "reached": "{0}: 達成！", "close_message": "メッセージを閉じる",
    },
}  # fmt: skip


def _language(tag: str) -> str:
    return tag.split("-")[0].lower()


def sdk_locale(tag: str) -> dict[str, object]:
    """What `welcome.locale` carries for a resolved language tag: the tag, its direction and
    the SDK's words (the language's table, English for a language without one)."""
    table = _TABLES.get(_language(tag), _TABLES["en"])
    strings = [table[name] for name in _ORDER]
    strings[_ORDER.index("of")] = f"\u2068{strings[_ORDER.index('of')]}\u2069"
    return {
        "tag": tag,
        # Only a right-to-left language sets the direction: otherwise the widget mirrors with
        # the host page's (an English tour in a Hebrew app is laid out right to left).
        "dir": "rtl" if _language(tag) in RTL_LANGUAGES else "",
        "strings": strings,
    }


def languages() -> list[str]:
    return sorted(_TABLES)
