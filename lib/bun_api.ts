/**
 * The part of Bun's API that the library calls, typed here rather than by
 * Bun's own type package: a Deno (or Node) project that imports lib/ has no
 * Bun types, and its type-check (`deno check`, `deno test`) would fail on
 * every use of `Bun`. Only the members used are declared; under Bun they are
 * Bun's own at run time.
 *
 * @module
 */

/** A connected socket (Bun.Socket): `data` is what the handler's owner keeps on it. */
export interface BunSocket<Data = unknown> {
  data: Data;
  /** Bytes the kernel took now; -1 once the socket is closed. */
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}

/** The callbacks of a socket (Bun.SocketHandler). */
export interface BunSocketHandler<Data> {
  open?(socket: BunSocket<Data>): void;
  data?(socket: BunSocket<Data>, chunk: Uint8Array): void;
  drain?(socket: BunSocket<Data>): void;
  end?(socket: BunSocket<Data>): void;
  close?(socket: BunSocket<Data>, error?: Error): void;
  error?(socket: BunSocket<Data>, error: Error): void;
}

/** What `Bun.file(...).stat()` tells (a node:fs Stats). */
export interface BunStats {
  mode: number;
  uid: number;
  isDirectory(): boolean;
}

/** A child from `Bun.spawn` with its stderr piped. */
export interface BunChild {
  pid: number;
  exited: Promise<number>;
  signalCode: string | null;
  stderr: ReadableStream<Uint8Array>;
  kill(signal?: string): void;
}

export interface BunApi {
  connect(
    options: ({ unix: string } | { hostname: string; port: number }) & { socket: BunSocketHandler<undefined> },
  ): Promise<BunSocket<undefined>>;
  listen<Data>(
    options: { unix: string; allowHalfOpen?: boolean; socket: BunSocketHandler<Data> },
  ): { stop(closeActiveConnections?: boolean): void };
  file(path: string): { text(): Promise<string>; stat(): Promise<BunStats> };
  mmap(path: string): Uint8Array;
  resolveSync(specifier: string, from: string): string;
  spawn(
    argv: string[],
    options: { stdin: "ignore"; stdout: "ignore"; stderr: "pipe"; detached?: boolean },
  ): BunChild;
  spawnSync(
    argv: string[],
    options: { stdin: "ignore"; stdout: "ignore"; stderr: "ignore"; timeout?: number },
  ): { exitCode: number | null; signalCode: string | null };
}

/** Bun's API, or undefined under another runtime. */
export const bun: BunApi | undefined = (globalThis as { Bun?: BunApi }).Bun;
