/** The SDK's own words in the person's language. The server sends them with `welcome`
 * (`locale: {tag, dir, strings}`, onboarding/sdk_strings.py) in the order of `S`, so the
 * core carries no table of its own; numbers are formatted by the browser's Intl for the
 * language. Kept on `window` so the lazy bundles (messages, builder) read the same words. */

export const enum S {
  Next, Back, Done, Of, Close, ShowMe, Activate, Step, Complete, OpenHint, GotIt,
  CloseHint, ItemDone, ItemToDo, Start, StartItem, Reached, CloseMessage,
  // The surfaces bundle's words.
  Survey, CloseSurvey, ThankYou, Skip, Send, WriteAnswer, ChooseAnswer, NotLikely, VeryLikely,
  Announcement, DismissBanner, Guide, DismissGuide, Checklist, AllDone, Help, HelpWaits, Search,
  SearchHelp, CloseHelp, Results, NoResults, NothingMatches, DoneOf, Replay, ReadMore,
}  // prettier-ignore

export interface Locale {
  tag?: string;
  dir?: string;
  strings?: string[];
}

const w = window as unknown as { MilepostLocale?: Locale };

export const setLocale = (locale: unknown): unknown => (w.MilepostLocale = locale as Locale);

export const locale = (): Locale => w.MilepostLocale!;

/** String `i` with `{0}`, `{1}`… filled in (numbers in the language's digits). */
export const t = (i: S, ...args: unknown[]): string => {
  const { strings, tag } = locale();
  return strings![i]!.replace(/{(\d)}/g, (_, n) => (args[n] as number).toLocaleString(tag));
};

/** String `i` holding plural forms (`one:{0} result|other:{0} results`, onboarding/sdk_strings.py)
 * for `n`: the form of the category the browser's Intl.PluralRules gives the language, else
 * `other`. Only the lazy bundles use it: the core has no plural. */
export const tn = (i: S, n: number): string => {
  const forms = new Map(t(i, n).split("|").map((form) => form.split(/:(.*)/s) as [string, string]));
  return forms.get(new Intl.PluralRules(locale().tag).select(n)) ?? forms.get("other")!;
};
