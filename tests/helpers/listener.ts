/**
 * A qmpctl that listens for events (`wait-event`, `events`), started so that
 * a test knows when it is listening: it runs with `-v`, and is ready once it
 * has had an answer to every request it sent and then sent nothing for a
 * moment (it subscribes right after its last answer, in the same turn of its
 * event loop, before it reads anything else from the socket).
 */
import { QMPCTL } from "./cli.ts";

export interface ListenerResult {
  code: number;
  stdout: string;
  /** stderr without the `-v` message log. */
  stderr: string;
  ms: number;
}

export interface Listener {
  child: ReturnType<typeof Bun.spawn>;
  /** Resolves once qmpctl listens. */
  ready: Promise<void>;
  result: Promise<ListenerResult>;
}

/** `env`: variables added to the test's own environment. */
export function startListener(args: string[], killAfterMs = 20_000, env?: Record<string, string>): Listener {
  const started = performance.now();
  const child = Bun.spawn([QMPCTL, "-v", ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: env && { ...process.env, ...env },
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  let markReady = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    let text = "", sent = 0, answered = 0;
    let quiet: ReturnType<typeof setTimeout> | undefined;
    for await (const chunk of child.stderr as ReadableStream<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      const lines = text.split("\n").slice(0, -1);
      sent = lines.filter((l) => l.startsWith("> ")).length;
      answered = lines.filter((l) => /^< \{"(return|error)"/.test(l)).length;
      clearTimeout(quiet);
      if (sent > 0 && sent === answered) quiet = setTimeout(markReady, 100);
    }
    clearTimeout(quiet);
    markReady(); // it ended: nothing more to wait for
    return text.split("\n").filter((l) => !l.startsWith("> ") && !l.startsWith("< ")).join("\n");
  })();
  const result = Promise.all([new Response(child.stdout as ReadableStream).text(), stderrDone, child.exited]).then(
    ([stdout, stderr, code]) => {
      clearTimeout(killer);
      return { code, stdout, stderr, ms: performance.now() - started };
    },
  );
  return { child, ready, result };
}
