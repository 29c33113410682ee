/** The command-line parser (cli/options.ts) and durations (cli/duration.ts). */
import { describe, expect, test } from "bun:test";
import { formatDuration, parseDuration } from "../cli/duration.ts";
import { type OptionSpec, parseArgs, UsageError } from "../cli/options.ts";
import { allOptions, GLOBAL_OPTIONS } from "../cli/registry.ts";

const SPECS: OptionSpec[] = [
  { name: "socket", short: "s", value: "ADDR", help: "" },
  { name: "timeout", value: "DURATION", help: "" },
  { name: "args", value: "JSON", help: "" },
  { name: "match", value: "KEY=VALUE", repeatable: true, help: "" },
  { name: "pretty", short: "p", help: "" },
  { name: "verbose", short: "v", help: "" },
  { name: "raw", help: "" },
];

const parse = (...argv: string[]) => {
  const { words, options } = parseArgs(argv, SPECS);
  return { words, options: Object.fromEntries(options) };
};

function usageError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).code).toBe("USAGE");
    return (error as Error).message;
  }
  throw new Error("no error");
}

describe("parseArgs", () => {
  test("options are read by kind: text, list and flag", () => {
    const { options } = parseArgs(["--args", "{}", "--match", "a=1", "--match", "b=2", "-p"], SPECS);
    expect(options.text("args")).toBe("{}");
    expect(options.text("pretty")).toBeUndefined(); // a flag has no text
    expect(options.text("socket")).toBeUndefined();
    expect(options.list("match")).toEqual(["a=1", "b=2"]);
    expect(options.list("socket")).toEqual([]);
    expect(options.flag("pretty")).toBe(true);
    expect(options.flag("raw")).toBe(false);
  });

  test("options before and after the command mean the same", () => {
    const expected: ReturnType<typeof parse> = {
      words: ["exec", "query-status"],
      options: { socket: "vm1.qmp", pretty: true },
    };
    expect(parse("-s", "vm1.qmp", "--pretty", "exec", "query-status")).toEqual(expected);
    expect(parse("exec", "query-status", "-s", "vm1.qmp", "--pretty")).toEqual(expected);
    expect(parse("exec", "--pretty", "query-status", "--socket", "vm1.qmp")).toEqual(expected);
  });

  test("-- ends the options: everything after it is a word", () => {
    expect(parse("-p", "hmp", "--", "-s", "--pretty", "--", "x")).toEqual({
      words: ["hmp", "-s", "--pretty", "--", "x"],
      options: { pretty: true },
    });
  });

  test("--opt=value and --opt value; the value is taken as typed", () => {
    expect(parse("--socket=unix:/a,server=on", "--timeout", "5s", '--args={"a":1}')).toEqual({
      words: [],
      options: { socket: "unix:/a,server=on", timeout: "5s", args: '{"a":1}' },
    });
    expect(parse("--args=")).toEqual({ words: [], options: { args: "" } });
  });

  test("--args - keeps '-' (stdin), and a value may start with a dash", () => {
    expect(parse("exec", "eject", "--args", "-")).toEqual({ words: ["exec", "eject"], options: { args: "-" } });
    expect(parse("--args", "--pretty")).toEqual({ words: [], options: { args: "--pretty" } });
  });

  test("a lone '-' is a word", () => {
    expect(parse("exec", "-")).toEqual({ words: ["exec", "-"], options: {} });
  });

  test("--match id=0010 keeps the string 0010; a repeatable option collects every value", () => {
    expect(parse("--match", "id=0010", "--match=data.x=1")).toEqual({
      words: [],
      options: { match: ["id=0010", "data.x=1"] },
    });
  });

  test("combined short flags, and a short option's value attached or next", () => {
    expect(parse("-pv", "exec")).toEqual({ words: ["exec"], options: { pretty: true, verbose: true } });
    expect(parse("-pvs", "vm1.qmp")).toEqual({
      words: [],
      options: { pretty: true, verbose: true, socket: "vm1.qmp" },
    });
    expect(parse("-svm1.qmp", "-p")).toEqual({ words: [], options: { socket: "vm1.qmp", pretty: true } });
    expect(parse("-ps/run/x")).toEqual({ words: [], options: { pretty: true, socket: "/run/x" } });
  });

  test("a flag given twice is still just set", () => {
    expect(parse("-v", "--verbose")).toEqual({ words: [], options: { verbose: true } });
  });

  test.each([
    [["-s", "a", "-s", "b"], "--socket given twice"],
    [["-s", "a", "--socket=b"], "--socket given twice"],
    [["--timeout", "1s", "exec", "--timeout", "2s"], "--timeout given twice"],
    [["--nope"], "unknown option --nope"],
    [["--nope=1"], "unknown option --nope"],
    [["--Pretty"], "unknown option --Pretty"],
    [["-x"], "unknown option -x"],
    [["-px"], "unknown option -x"],
    [["--pretty=yes"], "--pretty takes no value"],
    [["exec", "--socket"], "--socket needs a value (ADDR)"],
    [["exec", "-s"], "-s needs a value (ADDR)"],
    [["-ps"], "-s needs a value (ADDR)"],
  ])("%p is a usage error: %p", (argv, message) => {
    expect(usageError(() => parseArgs(argv, SPECS))).toBe(message);
  });

  test("where two specs share a name or a letter, the later one counts (a command's over a global one)", () => {
    const specs: OptionSpec[] = [{ name: "x", short: "x", help: "" }, { name: "x", short: "x", value: "V", help: "" }];
    expect(parseArgs(["--x", "v", "w"], specs)).toMatchObject({ words: ["w"], options: new Map([["x", "v"]]) });
    expect(parseArgs(["-x", "v", "w"], specs)).toMatchObject({ words: ["w"], options: new Map([["x", "v"]]) });
    expect(parseArgs(["--x", "w"], specs.toReversed())).toMatchObject({
      words: ["w"],
      options: new Map([["x", true]]),
    });
  });
});

describe("the real option table", () => {
  test("-s may be repeated: every address, in order (several targets)", () => {
    expect(parseArgs(["-s", "a", "exec", "x", "--socket=b"], allOptions()).options.get("socket")).toEqual(["a", "b"]);
  });

  test("a setting given twice (an alias's default, then the line's own): the last counts, as in curl", () => {
    for (const name of ["timeout", "connect-timeout", "wait-socket"]) {
      const argv = [`--${name}`, "1s", "exec", "x", `--${name}=2s`];
      expect(parseArgs(argv, allOptions()).options.text(name)).toBe("2s");
    }
    expect(parseArgs(["-j", "4", "exec", "x", "--jobs", "8"], allOptions()).options.text("jobs")).toBe("8");
  });

  test("any other option with a value given twice is a usage error: which one was meant is not a guess", () => {
    expect(usageError(() => parseArgs(["exec", "x", "--args", "{}", "--args", "{}"], allOptions()))).toBe(
      "--args given twice",
    );
  });

  test("each command's options are read as its spec says, wherever they stand", () => {
    const { options } = parseArgs(["--wait-event", "STOP", "exec", "stop", "-l"], allOptions());
    expect(Object.fromEntries(options)).toEqual({ "wait-event": ["STOP"], long: true });
  });

  test("the global options of the contract are all there, with their short forms", () => {
    const shortByName = Object.fromEntries(GLOBAL_OPTIONS.map((s) => [s.name, s.short]));
    expect(shortByName).toMatchObject({ socket: "s", verbose: "v", help: "h" });
    expect(Object.keys(shortByName)).toEqual(
      expect.arrayContaining(["timeout", "connect-timeout", "pretty", "raw", "version"]),
    );
  });
});

describe("parseDuration", () => {
  test.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["10", 10_000],
    ["1.5", 1500],
    ["1.5s", 1500],
    [".5s", 500],
    ["0", 0],
    ["0s", 0],
    ["0.1ms", 1], // a bound, however small, is never "no bound"
    [" 3s ", 3000],
    ["1d", 86_400_000], // what timeout(1) takes, too
    ["1e3", 1_000_000],
    ["1.5e-1s", 150],
    ["inf", 0],
    ["infinity", 0],
    ["INF", 0],
  ])("%p is %p ms", (text, ms) => {
    expect(parseDuration(text, "--timeout")).toBe(ms);
  });

  test.each(["", "s", "abc", "-1", "-1s", "1x", "1 s", "1e", "1.", "1sec", "5min", "1,5s", "1m30s", "infinite", "NaN"])(
    "%p is not a duration",
    (text) => {
      expect(usageError(() => parseDuration(text, "--timeout"))).toBe(
        `--timeout '${text}' is not a duration (like 500ms, 30s, 2m, 1d or a number of seconds; 0 or inf: no bound)`,
      );
    },
  );

  test("a duration too long for a timer is an error naming the option", () => {
    expect(usageError(() => parseDuration("9999999h", "--connect-timeout"))).toBe(
      "--connect-timeout '9999999h' is too long (at most 596h; 0 or inf: no bound)",
    );
    expect(parseDuration("596h", "--timeout")).toBe(596 * 3_600_000); // the most, as said: not a little more
    for (const text of ["596.5h", `${596 * 3600 + 1}`]) {
      expect(usageError(() => parseDuration(text, "--timeout"))).toBe(
        `--timeout '${text}' is too long (at most 596h; 0 or inf: no bound)`,
      );
    }
  });
});

describe("formatDuration", () => {
  test.each([
    [500, "500ms"],
    [1000, "1s"],
    [1500, "1500ms"],
    [90_000, "90s"],
    [120_000, "2m"],
    [7_200_000, "2h"],
  ])("%p ms is written %p", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
