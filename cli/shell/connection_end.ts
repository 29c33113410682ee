/**
 * How a shell's connection ends: QEMU's closing it after it was sent a quit
 * is the end asked for; any other end is a lost connection (exit 3).
 *
 * @module
 */
import type { QmpClient } from "../../lib/client.ts";
import { DisconnectedError } from "../../lib/errors.ts";
import type { ShellContext } from "./context.ts";

/** What connectionEnd rejects with when QEMU closed the connection after a quit it was sent (not an error). */
export const QEMU_QUIT = Symbol("QEMU quit");

/** Rejects when the connection ends: with its failure, QEMU_QUIT after a quit was sent, else connectionLost's error. */
export function connectionEnd(client: QmpClient, shell: ShellContext): Promise<never> {
  return client.closed.then((failure) =>
    Promise.reject(failure ?? (shell.quitSent ? QEMU_QUIT : connectionLost(client)))
  );
}

/** The error of a connection QEMU closed unasked. */
export function connectionLost(client: QmpClient): DisconnectedError {
  return new DisconnectedError(`connection lost: ${client.address.text} closed the connection`);
}
