/**
 * Address parsing: the forms `-s ADDR` takes, as a tagged value. The
 * `unix:` and `tcp:` spellings are QEMU's own chardev syntax (QEMU's docs,
 * "Character device options"), so a `-qmp` argument can be pasted as is.
 *
 * | form                                   | result                         |
 * | -------------------------------------- | ------------------------------ |
 * | `/run/vm1.qmp`, `./vm1.qmp`, `vm1.qmp` | UNIX socket path               |
 * | `unix:/run/vm1.qmp[,server=on,...]`    | same; QEMU's options ignored   |
 * | `host:port`, `tcp:host:port[,...]`     | TCP (an empty host: localhost) |
 * | `[::1]:4444`, `tcp:[::1]:4444`         | TCP over IPv6                  |
 * | `ssh://[USER@]HOST[:PORT]/PATH`        | UNIX socket PATH on HOST, via ssh |
 *
 * @module
 */
import { AddressError } from "./errors.ts";

/** Where a QMP server listens. `text` is what the user wrote, for messages. */
export type Address =
  | { kind: "unix"; path: string; text: string }
  | { kind: "tcp"; host: string; port: number; text: string }
  | SshAddress;

/** A UNIX socket on another host, reached through OpenSSH (`user` and `port` default to ssh's own). */
export interface SshAddress {
  /** Tells this form of Address from the `unix` and `tcp` ones. */
  kind: "ssh";
  /** The user to log in as, when given. */
  user?: string;
  /** A host name, an IP address (without its brackets) or an alias of the user's ssh_config. */
  host: string;
  /** The port of its sshd, when given. */
  port?: number;
  /** The socket's absolute path on `host`. */
  path: string;
  /** What the user wrote, for messages. */
  text: string;
}

const FORMS = "expected PATH, unix:PATH, HOST:PORT, tcp:HOST:PORT, [IPV6]:PORT or ssh://[USER@]HOST[:PORT]/PATH";

/**
 * Parse an address string: a path, `unix:PATH`, `HOST:PORT`, `tcp:HOST:PORT`,
 * `[IPV6]:PORT`, or `ssh://[USER@]HOST[:PORT]/PATH` (the module's table).
 *
 * @example
 * ```ts
 * import { parseAddress } from "./address.ts";
 * parseAddress("unix:/run/vm1.qmp,server=on,wait=off"); // { kind: "unix", path: "/run/vm1.qmp", ... }
 * parseAddress("[::1]:4444");                            // { kind: "tcp", host: "::1", port: 4444, ... }
 * parseAddress("ssh://admin@host1/run/vm1.qmp");         // { kind: "ssh", user: "admin", host: "host1", ... }
 * ```
 * @throws {AddressError} for anything else
 */
export function parseAddress(text: string): Address {
  if (text === "") throw new AddressError(`empty address: ${FORMS}`);
  // Each form but a plain path in a function of its own: a one-shot run pays for the code of each it runs.
  if (text.startsWith("ssh://")) return parseSsh(text);
  if (text.startsWith("unix:")) return parseUnix(text);
  if (text.startsWith("tcp:")) return parseTcp(text);
  // A path never needs a colon to be told apart: anything with a slash, or
  // without a colon, is a path; the rest must be HOST:PORT.
  if (text.includes("/") || !text.includes(":")) return { kind: "unix", path: text, text };
  return parseHostPort(text, text) ?? fail(`'${text}' is not an address: ${FORMS}${colonHint(text)}`);
}

/** `unix:PATH[,QEMU's options]`. */
function parseUnix(text: string): Address {
  const path = qemuOptionValue(text.slice(5), text);
  if (path === "") throw new AddressError(`'${text}' names no socket path: ${FORMS}`);
  // QEMU's abstract=on names no file: its name, read as a path, would reach another socket or none.
  const options = text.slice(5).match(/(?:[^,]|,,)+/g)!.slice(1); // after the path (,, is a comma in it)
  if (options.some((option) => /^abstract(?:=(?:on|yes|true|y))?$/.test(option))) {
    throw new AddressError(`'${text}': an abstract socket (abstract=on) is not reached: give QEMU a socket path`);
  }
  return { kind: "unix", path, text };
}

/** `tcp:HOST:PORT[,QEMU's options]`. */
function parseTcp(text: string): Address {
  // QEMU's form has no // (a URL's would make the host "//HOST", an unknown host)
  if (text.startsWith("tcp://")) fail(`'${text}' is not tcp:HOST:PORT (no //: tcp:${text.slice(6)})`);
  const value = qemuOptionValue(text.slice(4), text);
  return parseHostPort(value, text) ?? fail(`'${text}' is not tcp:HOST:PORT${colonHint(value, text)}`);
}

/**
 * What a colon that made no HOST:PORT (`text`, in `address` after its `tcp:`) may have meant: an IPv6
 * address without brackets, a file name, or QEMU's options after a HOST:PORT without `tcp:`.
 */
function colonHint(text: string, address = text): string {
  const last = text.lastIndexOf(":");
  const host = text.slice(0, last), port = text.slice(last + 1);
  const comma = text.indexOf(",");
  if (address === text && comma > 0 && parseHostPort(text.slice(0, comma), text)) {
    return ` (with QEMU's options, write tcp: first: tcp:${text})`;
  }
  if (text.startsWith("[")) return " (the brackets hold an IPv6 address: [::1]:4444)";
  if (!/^\d+$/.test(port)) {
    return port.includes(".") && address === text ? ` (a socket whose name has a colon: ./${text})` : "";
  }
  if (!host.includes(":")) return ` (port ${port}: at most 5 digits, 1-65535)`;
  return /^[\da-f:.]+(?:%.+)?$/i.test(host)
    ? ` (an IPv6 address goes in brackets: ${address.replace(text, `[${host}]:${port}`)})`
    : "";
}

/**
 * The value before QEMU's `,option=...` list: `,,` is a literal comma (read
 * left to right), a lone `,` ends it. What follows must read as QEMU's
 * options (`server=on,wait=off`, `nowait`): `unix:/run/a,b.qmp` is refused,
 * not taken as the path `/run/a`.
 */
function qemuOptionValue(text: string, address: string): string {
  const value = /^(?:[^,]|,,)*/.exec(text)![0];
  if (value.length === text.length) return value.replaceAll(",,", ",");
  const notAnOption = text.slice(value.length + 1).match(/(?:[^,]|,,)+/g)?.find((option) =>
    !/^[A-Za-z][\w-]*(?:=|$)/.test(option)
  );
  if (notAnOption !== undefined) {
    const comma = address.startsWith("unix:") ? " (a comma in a path is written ,, there)" : "";
    fail(`'${address}': '${notAnOption}' is not one of QEMU's options${comma}`);
  }
  return value.replaceAll(",,", ",");
}

/** An IPv6 address within brackets, with its zone (`fe80::1%eth0`); as in QEMU, a name or IPv4 address too. */
const BRACKETED_HOST = "\\[([0-9A-Fa-f:.%\\w]+)\\]"; // a plain literal: String.raw would run at every start-up

function parseHostPort(hostPort: string, text: string): Address | undefined {
  const match = new RegExp(String.raw`^(?:${BRACKETED_HOST}|([^:\[\]]*)):(\d{1,5})$`).exec(hostPort);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) throw new AddressError(`'${text}': port ${match[3]} is not in 1-65535`);
  // An empty host, as in QEMU's `-qmp tcp::4444,server=on` (every interface), is reached on localhost.
  return { kind: "tcp", host: match[1] ?? (match[2] || "localhost"), port, text };
}

/**
 * `ssh://[USER@]HOST[:PORT]/PATH`, as in RFC 3986 (authority, then an
 * absolute path) without percent-decoding: a socket path is taken as written.
 * HOST may be an alias of the user's ssh_config. A user or host that starts
 * with `-` is refused, so that it can never be read by ssh as an option, and
 * both are held to letters, digits and `.`, `_`, `-` (a user also `+`, `@`):
 * an older ssh put shell characters of either into a ProxyCommand's `%h`/`%r`
 * (CVE-2023-51385).
 */
function parseSsh(text: string): SshAddress {
  const rest = text.slice("ssh://".length);
  const slash = rest.indexOf("/");
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash);
  if (path === "" || path === "/") fail(`'${text}' names no socket path: expected ssh://[USER@]HOST[:PORT]/PATH`);
  const at = authority.lastIndexOf("@");
  const user = at < 0 ? undefined : authority.slice(0, at);
  const hostPort = authority.slice(at + 1);
  if (hostPort.startsWith("-") || user?.startsWith("-")) fail(`'${text}': a user or host may not start with '-'`);
  const match = new RegExp(String.raw`^(?:${BRACKETED_HOST}|([\w.-]+))(?::(\d{1,5}))?$`).exec(hostPort);
  if (!match) fail(`'${text}': '${hostPort}' is not HOST or HOST:PORT`);
  const host = match[1] ?? match[2];
  if (user !== undefined && !/^[\w.+@-]+$/.test(user)) fail(`'${text}': '${user}' is not a user name`);
  const port = match[3] === undefined ? undefined : Number(match[3]);
  if (port !== undefined && (port < 1 || port > 65535)) fail(`'${text}': port ${match[3]} is not in 1-65535`);
  return { kind: "ssh", user, host, port, path, text };
}

function fail(message: string): never {
  throw new AddressError(message);
}
