/**
 * The part of Deno's API that the library calls, typed here (as
 * lib/bun_api.ts types Bun's): a Bun project's type-check has no Deno types.
 *
 * @module
 */

/** A permission the library asks Deno about. */
export type DenoPermission =
  | { name: "read"; path: string }
  | { name: "run"; command: string }
  | { name: "net"; host: string };

const permissions = (globalThis as {
  Deno?: { permissions?: { querySync?(permission: DenoPermission): { state: string } } };
}).Deno?.permissions;

/** Deno's error class for a permission not granted (Deno 2; undefined elsewhere). */
const NotCapable = (globalThis as { Deno?: { errors?: { NotCapable?: new (message: string) => Error } } }).Deno
  ?.errors?.NotCapable;

/**
 * Whether `permission` is granted without asking: Deno prompts on a terminal
 * for one that is not, and throws without one. Elsewhere (Bun, Node), yes.
 */
export function denoGrants(permission: DenoPermission): boolean {
  return !permissions?.querySync || permissions.querySync(permission).state === "granted";
}

/**
 * An error as Deno's own for a permission not granted (`NotCapable`, which
 * the CLI names with exit 2), for a refusal Deno reports otherwise or not at
 * all: `flag` is the option that grants it (`--allow-run`).
 */
export function notGranted(access: "run" | "net", what: string, flag: string): Error {
  const message = `Requires ${access} access to "${what}", run again with the ${flag} flag`;
  if (NotCapable) return new NotCapable(message); // Deno's own class: `instanceof Deno.errors.NotCapable` holds
  const error = new Error(message);
  error.name = "NotCapable";
  return error;
}
