"""The SDK's own words (buttons, counters, labels) in each language it speaks, sent with
`welcome` for the person's resolved language so the core bundle carries no English of its own.

Each table is a list in the order of `widget/src/i18n.ts` (`S`); `{0}` and `{1}` are filled in
by the SDK, numbers formatted with the browser's Intl for the language. The counter is wrapped
in Unicode first-strong isolates (U+2068 … U+2069) so "2 of 3" keeps its order inside a
right-to-left page and "٢ من ٣" inside a left-to-right one.
"""

from __future__ import annotations

from typing import Any

# Scripts written right to left (ISO 639 language subtags).
RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur", "ps", "sd", "ug", "yi", "dv", "ckb"})

_ORDER = (
    "next", "back", "done", "of", "close", "show_me", "activate", "step", "complete",
    "open_hint", "got_it", "close_hint", "item_done", "item_to_do", "start", "start_item",
    "reached", "close_message",
    # The lazy surfaces bundle's words (widget/src/surfaces/*): surveys, banners, guides, the
    # resource center and the checklist celebration.
    "survey", "close_survey", "thank_you", "skip", "send", "write_answer", "choose_answer",
    "not_likely", "very_likely", "announcement", "dismiss_banner", "guide", "dismiss_guide",
    "checklist", "all_done", "help", "help_waits", "search", "search_help", "close_help",
    "results", "no_results", "nothing_matches", "done_of", "replay", "read_more",
)  # fmt: skip

# The surfaces bundle's words per language, merged into `_TABLES` below. A value with `|`
# holds plural forms, each after its CLDR category (`one:`, `few:`…, `other:` always there):
# the SDK picks one with the browser's Intl.PluralRules for the language.
_SURFACE_TABLES: dict[str, dict[str, str]] = {
    "en": {
        "survey": "Survey", "close_survey": "Close survey", "thank_you": "Thank you!",
        "skip": "Skip", "send": "Send", "write_answer": "Write an answer first.",
        "choose_answer": "Choose an answer first.", "not_likely": "Not likely",
        "very_likely": "Very likely", "announcement": "Announcement",
        "dismiss_banner": "Dismiss banner", "guide": "Guide", "dismiss_guide": "Dismiss guide",
        "checklist": "Checklist", "all_done": "{0}: all done!", "help": "Help",
        "help_waits": "Help opens when the current tour or message closes.",
        "search": "Search", "search_help": "Search help", "close_help": "Close help",
        "results": "one:{0} result|other:{0} results", "no_results": "No results",
        "nothing_matches": "Nothing matches “{0}”.", "done_of": "{0} of {1} done",
        "replay": " (replay the tour)", "read_more": "Read more ↗",
    },
    "fr": {
        "survey": "Questionnaire", "close_survey": "Fermer le questionnaire",
        "thank_you": "Merci !", "skip": "Passer", "send": "Envoyer",
        "write_answer": "Écrivez d’abord une réponse.",
        "choose_answer": "Choisissez d’abord une réponse.", "not_likely": "Peu probable",
        "very_likely": "Très probable", "announcement": "Annonce",
        "dismiss_banner": "Fermer la bannière", "guide": "Guide",
        "dismiss_guide": "Fermer le guide", "checklist": "Liste de tâches",
        "all_done": "{0} : tout est fait !", "help": "Aide",
        "help_waits": "L’aide s’ouvrira à la fin de la visite ou du message en cours.",
        "search": "Rechercher", "search_help": "Rechercher dans l’aide",
        "close_help": "Fermer l’aide", "results": "one:{0} résultat|other:{0} résultats",
        "no_results": "Aucun résultat", "nothing_matches": "Aucun résultat pour « {0} ».",
        "done_of": "{0} sur {1} faits", "replay": " (revoir la visite)",
        "read_more": "En savoir plus ↗",
    },
    "de": {
        "survey": "Umfrage", "close_survey": "Umfrage schließen", "thank_you": "Vielen Dank!",
        "skip": "Überspringen", "send": "Senden",
        "write_answer": "Bitte zuerst eine Antwort schreiben.",
        "choose_answer": "Bitte zuerst eine Antwort wählen.",
        "not_likely": "Unwahrscheinlich", "very_likely": "Sehr wahrscheinlich",
        "announcement": "Ankündigung", "dismiss_banner": "Banner schließen",
        "guide": "Anleitung", "dismiss_guide": "Anleitung schließen", "checklist": "Checkliste",
        "all_done": "{0}: alles erledigt!", "help": "Hilfe",
        "help_waits": "Die Hilfe öffnet sich, sobald die Tour oder Nachricht geschlossen ist.",
        "search": "Suchen", "search_help": "Hilfe durchsuchen", "close_help": "Hilfe schließen",
        "results": "one:{0} Ergebnis|other:{0} Ergebnisse", "no_results": "Keine Ergebnisse",
        "nothing_matches": "Keine Treffer für „{0}“.", "done_of": "{0} von {1} erledigt",
        "replay": " (Tour wiederholen)", "read_more": "Weiterlesen ↗",
    },
    "es": {
        "survey": "Encuesta", "close_survey": "Cerrar encuesta", "thank_you": "¡Gracias!",
        "skip": "Omitir", "send": "Enviar", "write_answer": "Escribe una respuesta primero.",
        "choose_answer": "Elige una respuesta primero.", "not_likely": "Poco probable",
        "very_likely": "Muy probable", "announcement": "Anuncio",
        "dismiss_banner": "Cerrar aviso", "guide": "Guía", "dismiss_guide": "Cerrar guía",
        "checklist": "Lista de tareas", "all_done": "{0}: ¡todo listo!", "help": "Ayuda",
        "help_waits": "La ayuda se abrirá al cerrarse el recorrido o el mensaje actual.",
        "search": "Buscar", "search_help": "Buscar en la ayuda", "close_help": "Cerrar ayuda",
        "results": "one:{0} resultado|other:{0} resultados", "no_results": "Sin resultados",
        "nothing_matches": "Nada coincide con «{0}».", "done_of": "{0} de {1} hechos",
        "replay": " (repetir el recorrido)", "read_more": "Leer más ↗",
    },
    "pt": {
        "survey": "Pesquisa", "close_survey": "Fechar pesquisa", "thank_you": "Obrigado!",
        "skip": "Pular", "send": "Enviar", "write_answer": "Escreva uma resposta primeiro.",
        "choose_answer": "Escolha uma resposta primeiro.", "not_likely": "Pouco provável",
        "very_likely": "Muito provável", "announcement": "Anúncio",
        "dismiss_banner": "Fechar aviso", "guide": "Guia", "dismiss_guide": "Fechar guia",
        "checklist": "Lista de tarefas", "all_done": "{0}: tudo feito!", "help": "Ajuda",
        "help_waits": "A ajuda abre quando o tour ou a mensagem atual fechar.",
        "search": "Pesquisar", "search_help": "Pesquisar na ajuda", "close_help": "Fechar ajuda",
        "results": "one:{0} resultado|other:{0} resultados", "no_results": "Nenhum resultado",
        "nothing_matches": "Nada corresponde a “{0}”.", "done_of": "{0} de {1} feitos",
        "replay": " (rever o tour)", "read_more": "Leia mais ↗",
    },
    "ar": {
        "survey": "استبيان", "close_survey": "إغلاق الاستبيان", "thank_you": "شكرًا لك!",
        "skip": "تخطٍّ", "send": "إرسال", "write_answer": "اكتب إجابة أولًا.",
        "choose_answer": "اختر إجابة أولًا.", "not_likely": "غير محتمل",
        "very_likely": "محتمل جدًا", "announcement": "إعلان", "dismiss_banner": "إغلاق الشريط",
        "guide": "دليل", "dismiss_guide": "إغلاق الدليل", "checklist": "قائمة المهام",
        "all_done": "{0}: اكتمل كل شيء!", "help": "مساعدة",
        "help_waits": "تُفتح المساعدة عند إغلاق الجولة أو الرسالة الحالية.",
        "search": "بحث", "search_help": "البحث في المساعدة", "close_help": "إغلاق المساعدة",
        "results": "zero:لا توجد نتائج|one:نتيجة واحدة|two:نتيجتان|few:{0} نتائج"
        "|many:{0} نتيجة|other:{0} نتيجة",
        "no_results": "لا توجد نتائج", "nothing_matches": "لا شيء يطابق «{0}».",
        "done_of": "تم {0} من {1}", "replay": " (إعادة الجولة)", "read_more": "اقرأ المزيد ↗",
    },
    "he": {
        "survey": "סקר", "close_survey": "סגירת הסקר", "thank_you": "תודה!", "skip": "דילוג",
        "send": "שליחה", "write_answer": "יש לכתוב תשובה קודם.",
        "choose_answer": "יש לבחור תשובה קודם.", "not_likely": "לא סביר",
        "very_likely": "סביר מאוד", "announcement": "הודעה", "dismiss_banner": "סגירת הבאנר",
        "guide": "מדריך", "dismiss_guide": "סגירת המדריך", "checklist": "רשימת משימות",
        "all_done": "{0}: הכול בוצע!", "help": "עזרה",
        "help_waits": "העזרה תיפתח כשהסיור או ההודעה הנוכחיים ייסגרו.",
        "search": "חיפוש", "search_help": "חיפוש בעזרה", "close_help": "סגירת העזרה",
        "results": "one:תוצאה אחת|two:שתי תוצאות|other:{0} תוצאות",
        "no_results": "אין תוצאות", "nothing_matches": "אין התאמות ל„{0}”.",
        "done_of": "{0} מתוך {1} בוצעו", "replay": " (הפעלת הסיור מחדש)",
        "read_more": "קריאה נוספת ↗",
    },
    "ja": {
        "survey": "アンケート", "close_survey": "アンケートを閉じる",
        "thank_you": "ありがとうございました！", "skip": "スキップ", "send": "送信",
        "write_answer": "先に回答を入力してください。",
        "choose_answer": "先に回答を選んでください。", "not_likely": "可能性は低い",
        "very_likely": "可能性は高い", "announcement": "お知らせ",
        "dismiss_banner": "バナーを閉じる", "guide": "ガイド", "dismiss_guide": "ガイドを閉じる",
        "checklist": "チェックリスト", "all_done": "{0}: すべて完了！", "help": "ヘルプ",
        "help_waits": "現在のツアーまたはメッセージが閉じるとヘルプが開きます。",
        "search": "検索", "search_help": "ヘルプを検索", "close_help": "ヘルプを閉じる",
        "results": "other:{0} 件", "no_results": "該当なし",
        "nothing_matches": "「{0}」に一致する項目はありません。", "done_of": "{0} / {1} 完了",
        "replay": "（ツアーを再生）", "read_more": "続きを読む ↗",
    },
}  # fmt: skip

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

for _language_tag, _words in _SURFACE_TABLES.items():
    _TABLES[_language_tag].update(_words)

# The peer comparison under a progress bar (analytics/peer_comparison.py), written by the server
# in the person's language: (all of them, this week), (all, the same week), (a share, this
# week), (a share, the same week). {0} is the number of people or the percentage.
_PEERS: dict[str, tuple[str, str, str, str]] = {
    "en": (
        "Faster than all {0} people who started this week",
        "Faster than all {0} people who started the same week",
        "Faster than {0} % of people who started this week",
        "Faster than {0} % of people who started the same week",
    ),
    "fr": (
        "Plus rapide que les {0} personnes qui ont commencé cette semaine",
        "Plus rapide que les {0} personnes qui ont commencé la même semaine",
        "Plus rapide que {0} % des personnes qui ont commencé cette semaine",
        "Plus rapide que {0} % des personnes qui ont commencé la même semaine",
    ),
    "de": (
        "Schneller als alle {0} Personen, die diese Woche begonnen haben",
        "Schneller als alle {0} Personen, die in derselben Woche begonnen haben",
        "Schneller als {0} % der Personen, die diese Woche begonnen haben",
        "Schneller als {0} % der Personen, die in derselben Woche begonnen haben",
    ),
    "es": (
        "Más rápido que las {0} personas que empezaron esta semana",
        "Más rápido que las {0} personas que empezaron la misma semana",
        "Más rápido que el {0} % de las personas que empezaron esta semana",
        "Más rápido que el {0} % de las personas que empezaron la misma semana",
    ),
    "pt": (
        "Mais rápido que todas as {0} pessoas que começaram esta semana",
        "Mais rápido que todas as {0} pessoas que começaram na mesma semana",
        "Mais rápido que {0} % das pessoas que começaram esta semana",
        "Mais rápido que {0} % das pessoas que começaram na mesma semana",
    ),
    "ar": (
        "أسرع من جميع الأشخاص الذين بدأوا هذا الأسبوع وعددهم {0}",
        "أسرع من جميع الأشخاص الذين بدأوا في الأسبوع نفسه وعددهم {0}",
        "أسرع من {0}٪ من الأشخاص الذين بدأوا هذا الأسبوع",
        "أسرع من {0}٪ من الأشخاص الذين بدأوا في الأسبوع نفسه",
    ),
    "he": (
        "מהיר יותר מכל {0} האנשים שהתחילו השבוע",
        "מהיר יותר מכל {0} האנשים שהתחילו באותו שבוע",
        "מהיר יותר מ־{0}% מהאנשים שהתחילו השבוע",
        "מהיר יותר מ־{0}% מהאנשים שהתחילו באותו שבוע",
    ),
    "ja": (
        "今週始めた {0} 人全員より速いペースです",
        "同じ週に始めた {0} 人全員より速いペースです",
        "今週始めた人の {0} % より速いペースです",
        "同じ週に始めた人の {0} % より速いペースです",
    ),
}


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


def peer_text(tag: str, *, percent: int, people: int, this_week: bool) -> str:
    """The peer comparison sentence in the language of `tag` (English for one without a
    table). Digits are the ASCII ones Chromium's Intl gives every language here, Arabic too."""
    table = _PEERS.get(_language(tag), _PEERS["en"])
    everyone = percent == 100
    sentence = table[(0 if everyone else 2) + (0 if this_week else 1)]
    return sentence.replace("{0}", str(people if everyone else percent))


def localise_peers(journeys: list[dict[str, Any]], tag: str) -> None:
    """Write the peer comparison of each welcome journey entry (`peers`, added by analytics)
    in the person's language; an entry without the figures keeps its text."""
    for entry in journeys:
        peers = entry.get("peers")
        if isinstance(peers, dict) and {"percent", "people", "this_week"} <= peers.keys():
            entry["peers"] = {
                **peers,
                "text": peer_text(
                    tag,
                    percent=peers["percent"],
                    people=peers["people"],
                    this_week=peers["this_week"],
                ),
            }
