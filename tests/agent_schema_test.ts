/** The guest agent's argument table: KEY=VALUE words typed as the agent's schema says. */
import { describe, expect, test } from "bun:test";
import { AGENT_COMMANDS, agentSchemaDigest, typeAgentArguments } from "../lib/agent_schema.ts";
import { ArgumentError } from "../lib/errors.ts";

describe("typeAgentArguments", () => {
  test("a str stays text, an int is a number, arg.N builds a list of strings", async () => {
    expect(await typeAgentArguments("guest-exec", ["path=123", "arg.0=-l", "arg.1=0010", "capture-output=on"]))
      .toEqual({ path: "123", arg: ["-l", "0010"], "capture-output": true });
    expect(await typeAgentArguments("guest-file-read", ["handle=1000", "count=4096"])).toEqual({
      handle: 1000,
      count: 4096,
    });
  });

  test("an alternate takes the branch its value fits: whence=1 or whence=set", async () => {
    expect(await typeAgentArguments("guest-file-seek", ["handle=1", "offset=0", "whence=set"])).toMatchObject({
      whence: "set",
    });
    expect(await typeAgentArguments("guest-file-seek", ["handle=1", "offset=0", "whence=2"])).toMatchObject({
      whence: 2,
    });
  });

  test("a list of objects from dotted words", async () => {
    expect(await typeAgentArguments("guest-set-vcpus", ["vcpus.0.logical-id=1", "vcpus.0.online=no"])).toEqual({
      vcpus: [{ "logical-id": 1, online: false }],
    });
  });

  test("unknown arguments, missing ones and bad values are ArgumentErrors naming the word", async () => {
    await expect(typeAgentArguments("guest-exec", ["pth=/bin/ls"])).rejects.toThrow(
      new ArgumentError("guest-exec: unknown argument 'pth' (did you mean path?)"),
    );
    await expect(typeAgentArguments("guest-file-close", ["handle=x"])).rejects.toThrow("'handle=x': expected int");
    await expect(typeAgentArguments("guest-file-open", ["mode=r"])).rejects.toThrow("missing argument 'path'");
  });

  test("a command the table does not know: JSON where the value parses, else text", async () => {
    expect(await typeAgentArguments("guest-future-command", ["n=5", "name=x", "flag=true"])).toEqual({
      n: 5,
      name: "x",
      flag: true,
    });
  });

  test("--args values are merged, words winning, and sent as given", async () => {
    expect(await typeAgentArguments("guest-exec", ["path=/bin/true"], { path: "/bin/false", "capture-output": 1 }))
      .toEqual({ path: "/bin/true", "capture-output": 1 });
  });
});

test("every type the table names is defined", () => {
  const digest = agentSchemaDigest();
  expect(Object.keys(digest.commands).sort()).toEqual(Object.keys(AGENT_COMMANDS).sort());
  for (const type of Object.values(digest.types)) {
    const refs = type.kind === "array"
      ? [type.element]
      : type.kind === "object"
      ? type.members.map((m) => m.type)
      : type.kind === "alternate"
      ? type.members
      : [];
    for (const ref of refs) expect(digest.types[ref]).toBeDefined();
  }
});
