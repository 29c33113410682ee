/**
 * Turns to log in to an ssh host. A stock sshd drops the connections past
 * its MaxStartups (from 10 at once that have not logged in yet, some of
 * them; all from 100), which a fan-out over many sockets on one host
 * (`--jobs 32`, or event waits, which run every target at once) would pass.
 * So at most LOGINS_PER_HOST logins to one host and port run at once; the
 * others wait for a turn, within the bound of their connection (the
 * client's connect timeout, --timeout), as each login runs within its own.
 *
 * @module
 */
import { abortable } from "./abort.ts";

/** How many logins to one host run at once: below a stock sshd's MaxStartups, with room for another client. */
export const LOGINS_PER_HOST = 8;

interface HostLogins {
  running: number;
  /** Those waiting for a turn, first come first served: each is given its turn by being called. */
  waiting: (() => void)[];
}

const hosts = new Map<string, HostLogins>();

/** Give the waiting their turns while there are turns to give. */
function pump(host: HostLogins): void {
  while (host.running < LOGINS_PER_HOST && host.waiting.length > 0) {
    host.running++;
    host.waiting.shift()!();
  }
}

/**
 * Wait for a turn to log in to `host` (a host and port, as given), bounded
 * by `signal`: resolves to the function that ends the turn (once the login
 * has succeeded or failed; calling it again does nothing).
 */
export async function loginTurn(host: string, signal: AbortSignal | undefined): Promise<() => void> {
  const logins = hosts.get(host) ?? { running: 0, waiting: [] };
  hosts.set(host, logins);
  const turn = Promise.withResolvers<void>();
  logins.waiting.push(turn.resolve);
  pump(logins);
  try {
    await abortable(turn.promise, signal, `a turn to log in to ${host} (${LOGINS_PER_HOST} at a time)`);
  } catch (error) {
    const at = logins.waiting.indexOf(turn.resolve);
    if (at >= 0) logins.waiting.splice(at, 1);
    else end(logins); // given a turn as the wait was cut short: passed on
    throw error;
  }
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    end(logins);
  };
}

function end(logins: HostLogins): void {
  logins.running--;
  pump(logins);
}
