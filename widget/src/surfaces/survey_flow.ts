/** A survey's order of questions (no DOM, unit-tested in widget/test/survey_flow.test.ts): the
 * questions that are no NPS band's follow-up, in order, with an NPS answer's follow-up (chosen
 * by its band: detractor 0-6, passive 7-8, promoter 9-10) asked right after it. The server
 * checks every answer again (onboarding/surveys.py); this only decides what to ask next. */

export type QuestionType = "nps" | "rating" | "single_choice" | "multiple_choice" | "text";

export interface Question {
  key: string;
  type: QuestionType;
  prompt: string;
  optional?: boolean;
  scale?: number;
  choices?: string[];
  /** The choices in the person's language, when translated (the answer is still the choice). */
  choice_labels?: unknown[];
  follow_up?: Partial<Record<Band, string>>;
}

export type Band = "detractor" | "passive" | "promoter";
export type Answer = number | string | string[];

const TYPES = ["nps", "rating", "single_choice", "multiple_choice", "text"];

export const band = (score: number): Band => (score <= 6 ? "detractor" : score <= 8 ? "passive" : "promoter");

/** The questions of a raw payload that the renderer can draw; anything malformed is dropped. */
export function questions(raw: unknown): Question[] {
  if (!Array.isArray(raw)) return [];
  return raw.filter(
    (q): q is Question =>
      typeof q === "object" &&
      q !== null &&
      typeof q.key === "string" &&
      typeof q.prompt === "string" &&
      TYPES.includes(q.type) &&
      (!q.type.endsWith("_choice") || (Array.isArray(q.choices) && q.choices.every((c: unknown) => typeof c === "string"))),
  );
}

/** The keys asked only as a band's follow-up. */
function followUps(all: Question[]): Set<string> {
  const keys = new Set<string>();
  for (const q of all) for (const target of Object.values(q.follow_up ?? {})) if (target) keys.add(target);
  return keys;
}

/** The question to ask after `current` was answered with `answer` (undefined: skipped), or null
 * when the survey is done. `current` null: the first question. */
export function next(all: Question[], current: Question | null, answer?: Answer): Question | null {
  const asides = followUps(all);
  if (current && current.type === "nps" && typeof answer === "number") {
    const target = current.follow_up?.[band(answer)];
    const found = all.find((q) => q.key === target);
    if (found) return found;
  }
  // After a follow-up, go on from the NPS question it follows.
  let from = current ? all.indexOf(current) : -1;
  if (current && asides.has(current.key)) {
    from = all.findIndex((q) => Object.values(q.follow_up ?? {}).includes(current.key));
  }
  return all.slice(from + 1).find((q) => !asides.has(q.key)) ?? null;
}
