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
