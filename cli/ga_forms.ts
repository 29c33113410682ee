/**
 * The forms of `qmpctl ga`, named by its first word: a subcommand of
 * qmpctl's own (`exec`, `cp`, `wait`) or an agent command. Some of ga's
 * options belong to one form (OptionSpec.form): the command refuses them
 * elsewhere, and completion does not offer them there.
 * @module
 */

/** The form of every agent command (`ga guest-ping`), as ga's help and its options in registry.ts name it. */
export const AGENT_COMMAND = "AGENT-COMMAND";

/** The form that `word`, ga's first word, makes. */
export function agentForm(word: string): string {
  return word === "exec" || word === "cp" || word === "wait" ? word : AGENT_COMMAND;
}

/**
 * Why the form `form` refuses the global option `name`, or undefined: --raw
 * prints a whole reply, which only an agent command prints; --pretty, a
 * JSON value (ga exec's with --json, `withJson`).
 */
export function formRefuses(form: string, name: string, withJson: boolean): string | undefined {
  if (form === AGENT_COMMAND) return undefined;
  if (name === "raw") return `ga ${form} does not take --raw`;
  if (name !== "pretty" || withJson) return undefined;
  return form === "exec" ? "ga exec takes --pretty only with --json" : `ga ${form} does not take --pretty`;
}
