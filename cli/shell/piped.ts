/**
 * The shell with commands on stdin (not a terminal): no prompt and no line
 * editing; each line runs in order as it arrives, and each command sent to
 * QEMU (or refused before sending) prints one JSON line, `{"return": ...}` or
 * `{"error": {...}}`, so a script can tell them apart; local commands
 * (`events`, `cpu`) and the lines of a transaction before its `)` print none. Exit 1 at the end if any line failed; a lost connection is
 * thrown (exit 3).
 *
 * @module
 */
import type { QmpClient } from "../../lib/client.ts";
import { abortErrorFor, DisconnectedError } from "../../lib/errors.ts";
import { writeStderrLine, writeStdout } from "../io.ts";
import { formatJson } from "../session.ts";
import type { ShellContext, ShellMode } from "./context.ts";

export interface PipedOptions {
  client: QmpClient;
  shell: ShellContext;
  mode: ShellMode;
  pretty: boolean;
  signal: AbortSignal;
}

export async function runPiped(options: PipedOptions): Promise<number> {
  const { client, shell, mode, pretty, signal } = options;
  let output = Promise.resolve();
  const print = (value: unknown) => (output = output.then(() => writeStdout(formatJson(value, pretty))));
  const events = client.events();
  void (async () => {
    for await (const event of events) if (shell.eventsOn) void print(event);
  })().catch(() => {}); // the connection's end is reported by the next command or read
  // While waiting for the next line: the connection may be lost, or SIGINT / --timeout come.
  const abortError = abortErrorFor("the next line on stdin");
  let onAbort = () => {};
  const stop = Promise.race([
    client.closed.then((failure) =>
      Promise.reject(failure ?? new DisconnectedError(`connection lost: ${client.address.text} closed the connection`))
    ),
    new Promise<never>((_, reject) => {
      onAbort = () => reject(abortError(signal));
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    }),
  ]);
  stop.catch(() => {}); // raced below

  let failed = false;
  try {
    for await (const line of racing(stdinLines(), stop)) {
      const outcome = await mode.run(line, signal);
      if (outcome.kind === "quit") break;
      if (outcome.kind === "return") await print({ return: outcome.value });
      else if (outcome.kind === "text") await print({ return: outcome.text });
      else if (outcome.kind === "error") {
        failed = true;
        await print({ error: outcome.error });
      } // a local command's note (`events on`) is for people at a terminal: not printed here
    }
    if (mode.cancel()) {
      writeStderrLine("qmpctl: the input ended inside transaction( ... ): the transaction was not sent");
      failed = true;
    }
    await output;
    return failed ? 1 : 0;
  } finally {
    events.close();
    signal.removeEventListener("abort", onAbort);
  }
}

/** The lines of stdin as they arrive (the last one without its newline too). */
async function* stdinLines(): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of process.stdin as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
    }
  }
  buffer += decoder.decode();
  if (buffer !== "") yield buffer;
}

/** The items of `source`, unless `stop` rejects first (while waiting for the next one). */
async function* racing<T>(source: AsyncGenerator<T>, stop: Promise<never>): AsyncGenerator<T> {
  for (;;) {
    const next = await Promise.race([source.next(), stop]);
    if (next.done) return;
    yield next.value;
  }
}
