/** `ssh://` addresses (parseAddress) and the QMPCTL_SSH_COMMAND splitter (splitShellWords). */
import { describe, expect, test } from "bun:test";
import { parseAddress } from "../lib/address.ts";
import { AddressError } from "../lib/errors.ts";
import { ShellWordsError, splitShellWords } from "../lib/shell_words.ts";

describe("parseAddress, ssh:// forms", () => {
  test.each([
    ["ssh://hv1/run/vm1.qmp", { user: undefined, host: "hv1", port: undefined, path: "/run/vm1.qmp" }],
    ["ssh://admin@hv1/run/vm1.qmp", { user: "admin", host: "hv1", port: undefined, path: "/run/vm1.qmp" }],
    ["ssh://hv1:2222/run/vm1.qmp", { user: undefined, host: "hv1", port: 2222, path: "/run/vm1.qmp" }],
    ["ssh://admin@10.0.0.5:22/run/qemu/vm 1.qmp", {
      user: "admin",
      host: "10.0.0.5",
      port: 22,
      path: "/run/qemu/vm 1.qmp",
    }],
    ["ssh://[::1]:2222/run/vm1.qmp", { user: undefined, host: "::1", port: 2222, path: "/run/vm1.qmp" }],
    ["ssh://[fe80::1%eth0]/x.sock", { user: undefined, host: "fe80::1%eth0", port: undefined, path: "/x.sock" }],
    ["ssh://a.b@hv1.example.org/x.sock", { user: "a.b", host: "hv1.example.org", port: undefined, path: "/x.sock" }],
    ["ssh://jo@corp.example@hv_1/x.sock", { user: "jo@corp.example", host: "hv_1", port: undefined, path: "/x.sock" }],
  ])("%s", (text, expected) => {
    expect(parseAddress(text)).toEqual({ kind: "ssh", ...expected, text });
  });

  test.each([
    ["ssh://hv1", "names no socket path"],
    ["ssh://hv1/", "names no socket path"],
    ["ssh:///run/vm1.qmp", "is not HOST or HOST:PORT"],
    ["ssh://hv1:0/x.sock", "port 0 is not in 1-65535"],
    ["ssh://hv1:99999/x.sock", "port 99999 is not in 1-65535"],
    ["ssh://hv1:123456/x.sock", "is not HOST or HOST:PORT"],
    ["ssh://hv1:port/x.sock", "is not HOST or HOST:PORT"],
    ["ssh://@hv1/x.sock", "is not a user name"],
    ["ssh://-oProxyCommand=evil/x.sock", "may not start with '-'"],
    ["ssh://-l@hv1/x.sock", "may not start with '-'"],
    // Shell characters an older ssh put into a ProxyCommand's %h and %r (CVE-2023-51385).
    ["ssh://`id`@hv1/x.sock", "is not a user name"],
    ["ssh://a$(id)@hv1/x.sock", "is not a user name"],
    ["ssh://hv1;id/x.sock", "is not HOST or HOST:PORT"],
    ["ssh://hv1'|id/x.sock", "is not HOST or HOST:PORT"],
  ])("%s is refused: %s", (text, message) => {
    expect(() => parseAddress(text)).toThrow(AddressError);
    expect(() => parseAddress(text)).toThrow(message);
  });

  test("a path that merely starts with ssh: is still a path", () => {
    expect(parseAddress("ssh:/x.sock")).toEqual({ kind: "unix", path: "ssh:/x.sock", text: "ssh:/x.sock" });
  });
});

describe("splitShellWords, as sh splits a command line", () => {
  test.each([
    ["ssh", ["ssh"]],
    ["  ssh   -F  ./cfg  ", ["ssh", "-F", "./cfg"]],
    ["ssh\t-v\n-F x", ["ssh", "-v", "-F", "x"]],
    [`ssh -F "./my config"`, ["ssh", "-F", "./my config"]],
    [`ssh -o 'ProxyCommand=nc %h %p'`, ["ssh", "-o", "ProxyCommand=nc %h %p"]],
    [`ssh -F my\\ config`, ["ssh", "-F", "my config"]],
    [`a"b c"'d e'f`, ["ab cd ef"]],
    [`"" ''`, ["", ""]],
    [`"a\\"b" "\\$HOME" "\\x"`, ['a"b', "$HOME", "\\x"]],
    [`'a\\b'`, ["a\\b"]],
    [`$HOME ~/x "$USER"`, ["$HOME", "~/x", "$USER"]],
    ["a\\\nb", ["ab"]],
    ["'' \\\n\"\"\\\n", ["", ""]],
    ["a\rb", ["a", "b"]],
    ["ssh -v # -F x", ["ssh", "-v"]], // a # that starts a word starts a comment
    [`a#b '#c' \\#d "x"#`, ["a#b", "#c", "#d", "x#"]],
    ["", []],
  ])("%j", (line, words) => {
    expect(splitShellWords(line)).toEqual(words);
  });

  test.each([[`ssh -F "x`], [`ssh -o 'x`], [`ssh \\`]])("%j does not close", (line) => {
    expect(() => splitShellWords(line)).toThrow(ShellWordsError);
  });
});
