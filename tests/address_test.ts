/** parseAddress: every form of the contract's address table, and the errors. */
import { describe, expect, test } from "bun:test";
import { parseAddress } from "../lib/address.ts";
import { AddressError } from "../lib/errors.ts";

function errorOf(text: string): AddressError {
  try {
    parseAddress(text);
  } catch (error) {
    expect(error).toBeInstanceOf(AddressError);
    expect((error as AddressError).code).toBe("ADDRESS");
    return error as AddressError;
  }
  throw new Error(`'${text}' parsed`);
}

describe("parseAddress", () => {
  test.each([
    ["/run/vm1.qmp", "/run/vm1.qmp"],
    ["./vm1.qmp", "./vm1.qmp"],
    ["vm1.qmp", "vm1.qmp"],
    ["../dir with space/vm.sock", "../dir with space/vm.sock"],
    ["/run/a:b/vm.qmp", "/run/a:b/vm.qmp"], // a slash makes it a path even with a colon
    ["unix:/run/vm1.qmp", "/run/vm1.qmp"],
    ["unix:vm1.qmp", "vm1.qmp"],
    ["unix:/run/vm1.qmp,server=on,wait=off", "/run/vm1.qmp"],
    ["unix:/run/vm1.qmp,server,nowait", "/run/vm1.qmp"],
    ["unix:/run/a,,b.qmp", "/run/a,b.qmp"], // QEMU's ,, escape is a literal comma
    ["unix:/run/a,,b.qmp,server=on", "/run/a,b.qmp"],
    ["unix:/run/a,,,server=on", "/run/a,"], // ",," then the "," that starts the options
    ["unix:/run/a,,,,b", "/run/a,,b"],
  ])("%p is the UNIX socket %p", (text, path) => {
    expect(parseAddress(text)).toEqual({ kind: "unix", path, text });
  });

  test.each([
    ["localhost:4444", "localhost", 4444],
    ["127.0.0.1:1", "127.0.0.1", 1],
    ["vm-host.example.org:65535", "vm-host.example.org", 65535],
    ["tcp:localhost:4444", "localhost", 4444],
    ["tcp:127.0.0.1:4444,server=on,wait=off", "127.0.0.1", 4444],
    ["[::1]:4444", "::1", 4444],
    ["tcp:[::1]:4444", "::1", 4444],
    ["tcp:[::1]:4444,server=on,wait=off,ipv6=on", "::1", 4444],
    ["[fe80::1%eth0]:4444", "fe80::1%eth0", 4444],
    ["[localhost]:4444", "localhost", 4444], // QEMU takes a name in brackets too
    ["[2001:db8::7]:80", "2001:db8::7", 80],
    ["[::ffff:127.0.0.1]:80", "::ffff:127.0.0.1", 80],
    ["tcp::4444,server=on,wait=off", "localhost", 4444], // QEMU's empty host: every interface
    [":4444", "localhost", 4444],
  ])("%p is TCP host %p port %p", (text, host, port) => {
    expect(parseAddress(text)).toEqual({ kind: "tcp", host, port, text });
  });

  test("an empty address says so and lists the forms", () => {
    expect(errorOf("").message).toBe(
      "empty address: expected PATH, unix:PATH, HOST:PORT, tcp:HOST:PORT, [IPV6]:PORT or ssh://[USER@]HOST[:PORT]/PATH",
    );
  });

  test.each(["unix:", "unix:,server=on"])("%p names no socket path", (text) => {
    expect(errorOf(text).message).toStartWith(`'${text}' names no socket path`);
  });

  test.each(["unix:vm1,abstract=on,server=on,wait=off", "unix:vm1,abstract", "unix:/run/vm1,abstract=yes"])(
    "%p, QEMU's abstract socket, is refused (its name is no path: it would reach another socket or none)",
    (text) => {
      expect(errorOf(text).message).toBe(
        `'${text}': an abstract socket (abstract=on) is not reached: give QEMU a socket path`,
      );
    },
  );

  test("abstract=off, and abstract=on written in a path (,, is a comma), are a path as usual", () => {
    expect(parseAddress("unix:/run/vm1.qmp,abstract=off")).toMatchObject({ kind: "unix", path: "/run/vm1.qmp" });
    expect(parseAddress("unix:/run/a,,abstract=on")).toMatchObject({ kind: "unix", path: "/run/a,abstract=on" });
  });

  test.each(["host:0", "host:65536", "[::1]:99999", "tcp:host:70000"])("%p has a port out of range", (text) => {
    expect(errorOf(text).message).toMatch(
      new RegExp(`^'${text.replace(/[[\]]/g, "\\$&")}': port \\d+ is not in 1-65535$`),
    );
  });

  test.each(["tcp:", "tcp:localhost", "tcp:localhost:", "tcp:host:http", "tcp:host:1:2", "tcp:vm:1.qmp"])(
    "%p is not tcp:HOST:PORT",
    (text) => {
      expect(errorOf(text).message).toBe(`'${text}' is not tcp:HOST:PORT`);
    },
  );

  test.each([
    ["tcp:::1:47106", " (an IPv6 address goes in brackets: tcp:[::1]:47106)"],
    ["tcp:::1:47106,ipv6=on", " (an IPv6 address goes in brackets: tcp:[::1]:47106,ipv6=on)"],
    ["tcp:fe80::1%eth0:4444", " (an IPv6 address goes in brackets: tcp:[fe80::1%eth0]:4444)"],
    ["tcp:[::1]", " (the brackets hold an IPv6 address: [::1]:4444)"],
    ["tcp:host:123456", " (port 123456: at most 5 digits, 1-65535)"],
  ])("%p is not tcp:HOST:PORT%s, as without tcp:", (text, hint) => {
    expect(errorOf(text).message).toBe(`'${text}' is not tcp:HOST:PORT${hint}`);
  });

  test("tcp://HOST:PORT, a URL's form, is refused naming QEMU's (not taken as the host //HOST)", () => {
    expect(errorOf("tcp://127.0.0.1:4444").message).toBe(
      "'tcp://127.0.0.1:4444' is not tcp:HOST:PORT (no //: tcp:127.0.0.1:4444)",
    );
  });

  const FORMS = "expected PATH, unix:PATH, HOST:PORT, tcp:HOST:PORT, [IPV6]:PORT or ssh://[USER@]HOST[:PORT]/PATH";
  test.each([
    ["localhost:", ""],
    ["localhost:http", ""],
    ["a:b:c", ""],
    ["::1:4444", " (an IPv6 address goes in brackets: [::1]:4444)"],
    ["[::1]", " (the brackets hold an IPv6 address: [::1]:4444)"],
    ["[::1]:", " (the brackets hold an IPv6 address: [::1]:4444)"],
    ["host:123456", " (port 123456: at most 5 digits, 1-65535)"],
    ["vm:1.qmp", " (a socket whose name has a colon: ./vm:1.qmp)"],
    ["host:1:2", ""], // no IPv6 address: no brackets to suggest
    // QEMU's options, pasted after an address without tcp:, are taken after tcp: (README, Addresses)
    ["[::1]:47106,ipv6=on", " (with QEMU's options, write tcp: first: tcp:[::1]:47106,ipv6=on)"],
    [
      "localhost:4444,server=on,wait=off",
      " (with QEMU's options, write tcp: first: tcp:localhost:4444,server=on,wait=off)",
    ],
  ])("%p is not an address%s", (text, hint) => {
    expect(errorOf(text).message).toBe(`'${text}' is not an address: ${FORMS}${hint}`);
  });

  test.each([
    [
      "unix:/run/a,b.qmp",
      "'unix:/run/a,b.qmp': 'b.qmp' is not one of QEMU's options (a comma in a path is written ,, there)",
    ],
    [
      "unix:/run/a,server=on,b c",
      "'unix:/run/a,server=on,b c': 'b c' is not one of QEMU's options (a comma in a path is written ,, there)",
    ],
    ["tcp:host:4444,x.y", "'tcp:host:4444,x.y': 'x.y' is not one of QEMU's options"],
  ])("%p: what follows a lone comma must be QEMU's options, or the path would be cut there", (text, message) => {
    expect(errorOf(text).message).toBe(message);
  });
});
