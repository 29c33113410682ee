/** Turns to log in to an ssh host: at most LOGINS_PER_HOST at once per host, none lost to a wait cut short. */
import { expect, test } from "bun:test";
import { LOGINS_PER_HOST, loginTurn } from "../lib/ssh_logins.ts";

/** Whether `promise` has settled once pending callbacks have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => (done = true), () => (done = true));
  await Bun.sleep(0);
  return done;
}

test("past LOGINS_PER_HOST logins to a host, the next waits for one to end; another host does not", async () => {
  const ends = await Promise.all(Array.from({ length: LOGINS_PER_HOST }, () => loginTurn("host-a", undefined)));
  const next = loginTurn("host-a", undefined);
  expect(await settled(next)).toBe(false);
  expect(await settled(loginTurn("host-b", undefined))).toBe(true);
  ends[0]();
  ends[0](); // a second call ends nothing more
  expect(await settled(next)).toBe(true);
  const after = loginTurn("host-a", undefined);
  expect(await settled(after)).toBe(false); // the second call gave no turn away
  for (const end of [...ends.slice(1), await next]) end();
  (await after)();
});

test("a wait cut short (--timeout) says for what, and leaves no turn lost: the one after it gets its turn", async () => {
  const ends = await Promise.all(Array.from({ length: LOGINS_PER_HOST }, () => loginTurn("host-c", undefined)));
  const cut = new AbortController();
  const abandoned = loginTurn("host-c", cut.signal);
  const after = loginTurn("host-c", undefined);
  cut.abort(new DOMException("the bound", "TimeoutError"));
  await expect(abandoned).rejects.toThrow("timed out waiting for a turn to log in to host-c (8 at a time)");
  ends[0]();
  expect(await settled(after)).toBe(true);
  for (const end of [...ends.slice(1), await after]) end();
});
