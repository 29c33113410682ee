/** The version qmpctl reports is package.json's, naming the commit when the build came from an untagged tree. */
import { expect, test } from "bun:test";
import packageJson from "../package.json" with { type: "json" };
import { qmpctl } from "./helpers/cli.ts";

test("qmpctl --version prints package.json's version (and the commit when untagged) as one line, exit 0", async () => {
  const result = await qmpctl(["--version"]);
  const suffix = String.raw`(\+g[0-9a-f]{7,}(\.dirty)?)?`;
  expect(result).toMatchObject({ code: 0, stderr: "" });
  expect(result.stdout).toMatch(new RegExp(`^qmpctl ${packageJson.version.replaceAll(".", "\\.")}${suffix}\n$`));
});

test("the build names the commit it came from", async () => {
  const head = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"]).stdout.toString().trim();
  const tags = Bun.spawnSync(["git", "tag", "--points-at", "HEAD"]).stdout.toString().split("\n");
  const tagged = tags.includes(`v${packageJson.version}`);
  const { stdout } = await qmpctl(["--version"]);
  if (tagged) expect(stdout).not.toContain("+g");
  else expect(stdout).toContain(`+g${head}`);
});
