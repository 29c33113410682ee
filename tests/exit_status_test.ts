/** Exit statuses are described in one place (cli/exit_status.ts): help texts are made from it, the README agrees. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT, exitStatusHelp, MEANINGS } from "../cli/exit_status.ts";
import { qmpctl } from "./helpers/cli.ts";
import { ROOT, sourceFiles } from "./helpers/source_scan.ts";

describe("exit statuses", () => {
  test("exitStatusHelp lists the statuses in order, with a command's own words, wrapped to 78 columns", () => {
    expect(exitStatusHelp(["OK", "USAGE"], { OK: "the events arrived" })).toBe(
      "Exit status: 0 the events arrived, 2 usage.",
    );
    const all = exitStatusHelp(Object.keys(EXIT) as (keyof typeof EXIT)[]);
    expect(all.split("\n").every((line) => line.length <= 78)).toBe(true);
    expect(all.replaceAll("\n", " ")).toBe(
      "Exit status: 0 done, 1 QEMU answered with an error, 2 usage, 3 connection, " +
        "4 the job or migration to follow is not there, 70 a bug in qmpctl (please report it), " +
        "74 could not write the output, 124 --timeout ran out, 130 interrupted.",
    );
  });

  test("no help text writes its own 'Exit status:' paragraph", () => {
    const own = sourceFiles().filter((file) =>
      file !== "cli/exit_status.ts" && file !== "cli/help.ts" &&
      readFileSync(join(ROOT, file), "utf8").includes("Exit status:")
    );
    expect(own).toEqual([]);
  });

  test("the README's table has every status with the meaning the module gives", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const start = readme.indexOf("### Output and exit status");
    const section = readme.slice(start, readme.indexOf("\n#", start + 1));
    const rows = [...section.matchAll(/^\| (\d+) \| (.*) \|$/gm)].map((
      m,
    ) => [Number(m[1]), m[2].replaceAll("\\|", "|")]);
    const expected = Object.entries(MEANINGS).map(([name, meaning]) => [EXIT[name as keyof typeof EXIT], meaning.long]);
    expect(rows).toEqual(expected);
  });

  test("the general help and a command's help show the paragraph", async () => {
    const general = await qmpctl(["--help"]);
    expect(general.stdout).toContain("\n  70   a bug in qmpctl: stderr says internal error; please report it");
    const waitEvent = await qmpctl(["help", "wait-event"]);
    expect(waitEvent.stdout).toContain("Exit status: 0 the events arrived, 1 QEMU sent an error that answers no");
  });

  test("every command that prints on stdout says it exits 74 when the output cannot be written", async () => {
    const printing = [
      "exec",
      "hmp",
      "events",
      "wait-event",
      "batch",
      "shell",
      "ga",
      "job",
      "migrate",
      "commands",
      "describe",
      "completions",
    ];
    const missing = [];
    for (const command of printing) {
      const paragraph = (await qmpctl(["help", command])).stdout.split("Exit status:")[1]?.split("\n\n")[0] ?? "";
      if (!/\b74 /.test(paragraph.replaceAll("\n", " "))) missing.push(command);
    }
    expect(missing).toEqual([]);
  });
});
