/** The version qmpctl reports is package.json's. */
import { expect, test } from "bun:test";
import { VERSION } from "../cli/version.ts";
import packageJson from "../package.json" with { type: "json" };
import { qmpctl } from "./helpers/cli.ts";

test("cli/version.ts's VERSION equals package.json's version", () => {
  expect(VERSION).toBe(packageJson.version);
});

test("qmpctl --version prints it as one line and exits 0", async () => {
  expect(await qmpctl(["--version"])).toMatchObject({ code: 0, stdout: `qmpctl ${packageJson.version}\n`, stderr: "" });
});
