/** lib/fatal_signals.ts: dying of a signal as its default action would, after the work that must not be left undone. */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "qmpctl-fatal-signals-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the same signal sent again while dieOf's work runs (timeout(1) sends it twice) does not cut the work short", async () => {
  const script = join(dir, "dies.ts"), done = join(dir, "done");
  writeFileSync(
    script,
    `import { writeFileSync } from "node:fs";
import { beforeDying, dieOf } from ${JSON.stringify(join(import.meta.dir, "../lib/fatal_signals.ts"))};
beforeDying(() => {
  process.kill(process.pid, "SIGTERM"); // the second one, as the work runs
  writeFileSync(${JSON.stringify(done)}, "the work ran to its end");
});
process.on("SIGTERM", () => dieOf("SIGTERM"));
setInterval(() => {}, 1000);
process.kill(process.pid, "SIGTERM");
`,
  );
  const child = Bun.spawn([process.execPath, script], { stdout: "ignore", stderr: "pipe" });
  await child.exited;
  expect({ signal: child.signalCode, stderr: await new Response(child.stderr).text() }).toEqual({
    signal: "SIGTERM",
    stderr: "",
  });
  expect(readFileSync(done, "utf8")).toBe("the work ran to its end");
});
