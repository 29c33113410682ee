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
 *
 * @module
 */
import { AddressError } from "./errors.ts";

/** Where a QMP server listens. `text` is what the user wrote, for messages. */
export type Address =
  | { kind: "unix"; path: string; text: string }
  | { kind: "tcp"; host: string; port: number; text: string };

const FORMS = "expected PATH, unix:PATH, HOST:PORT, tcp:HOST:PORT or [IPV6]:PORT";

/**
 * Parse an address string.
 *
 * @example
 * ```ts
 * import { parseAddress } from "./address.ts";
 * parseAddress("unix:/run/vm1.qmp,server=on,wait=off"); // { kind: "unix", path: "/run/vm1.qmp", ... }
 * parseAddress("[::1]:4444");                            // { kind: "tcp", host: "::1", port: 4444, ... }
 * ```
 * @throws {AddressError} for anything else
 */
export function parseAddress(text: string): Address {
  if (text === "") throw new AddressError(`empty address: ${FORMS}`);
  if (text.startsWith("unix:")) {
    const path = qemuOptionValue(text.slice(5));
    if (path === "") throw new AddressError(`'${text}' names no socket path: ${FORMS}`);
    return { kind: "unix", path, text };
  }
  if (text.startsWith("tcp:")) {
    return parseHostPort(qemuOptionValue(text.slice(4)), text) ??
      fail(`'${text}' is not tcp:HOST:PORT`);
  }
  // A path never needs a colon to be told apart: anything with a slash, or
  // without a colon, is a path; the rest must be HOST:PORT.
  if (text.includes("/") || !text.includes(":")) return { kind: "unix", path: text, text };
  return parseHostPort(text, text) ?? fail(`'${text}' is not an address: ${FORMS}`);
}

/** The value before QEMU's `,option=...` list: `,,` is a literal comma (read left to right), a lone `,` ends it. */
function qemuOptionValue(text: string): string {
  return /^(?:[^,]|,,)*/.exec(text)![0].replaceAll(",,", ",");
}

function parseHostPort(hostPort: string, text: string): Address | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.%\w]+)\]|([^:\[\]]*)):(\d{1,5})$/.exec(hostPort);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) throw new AddressError(`'${text}': port ${match[3]} is not in 1-65535`);
  // An empty host, as in QEMU's `-qmp tcp::4444,server=on` (every interface), is reached on localhost.
  return { kind: "tcp", host: match[1] ?? (match[2] || "localhost"), port, text };
}

function fail(message: string): never {
  throw new AddressError(message);
}
