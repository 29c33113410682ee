/**
 * The built binary reads nothing from the directory it runs in: no `.env*`
 * (which would set QMPCTL_SOCKET or XDG_CACHE_HOME), no `bunfig.toml` (whose
 * `preload` would run code inside qmpctl), no tsconfig.json or package.json.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QMPCTL, qmpctl } from "./helpers/cli.ts";

let dir: string;
const marker = () => join(dir, "preload-ran");

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "qmpctl-cwd-"));
  const files: Record<string, string> = {
    "bunfig.toml": `preload = ["./preload.js"]\n`,
    "preload.js": `require("node:fs").writeFileSync(${JSON.stringify(marker())}, "x"); console.log("PRELOAD RAN");\n`,
    ".env": `QMPCTL_SOCKET=${join(dir, "env.sock")}\nXDG_CACHE_HOME=${join(dir, "env-cache")}\n`,
    ".env.local": `QMPCTL_SOCKET=${join(dir, "env-local.sock")}\n`,
    ".env.production": `QMPCTL_SOCKET=${join(dir, "env-production.sock")}\n`,
    "tsconfig.json": `{ "compilerOptions": { "paths": { "*": ["./nowhere/*"] } } }\n`,
    "package.json": `{ "name": "planted", "type": "commonjs", "imports": { "#x": "./preload.js" } }\n`,
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("--version in a directory with bunfig.toml and .env prints only the version and runs no preload", async () => {
  const result = await qmpctl(["--version"], { cwd: dir });
  expect(result).toMatchObject({ code: 0, stderr: "" });
  expect(result.stdout).toMatch(/^qmpctl \S+\n$/);
  expect(existsSync(marker())).toBe(false);
});

test("exec without -s in a directory whose .env sets QMPCTL_SOCKET says no address", async () => {
  const result = await qmpctl(["exec", "query-status"], { cwd: dir });
  expect(result.code).toBe(2);
  expect(result.stdout).toBe("");
  expect(result.stderr).toMatch(/^qmpctl: no address/);
  expect(existsSync(marker())).toBe(false);
});

test("the binary opens none of the planted files (strace)", async () => {
  const trace = join(dir, "..", `qmpctl-strace-${process.pid}`);
  const child = Bun.spawn(
    ["strace", "-f", "-qq", "-o", trace, "-e", "trace=%file", QMPCTL, "exec", "query-status", "-s", join(dir, "none")],
    { cwd: dir, stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
  );
  const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  await child.exited;
  clearTimeout(killer);
  const opened = (await Bun.file(trace).text()).split("\n")
    .filter((line) => /"(?:[^"]*\/)?(?:\.env[^"]*|bunfig\.toml|tsconfig\.json|package\.json)"/.test(line));
  rmSync(trace, { force: true });
  expect(opened).toEqual([]);
});

test("BUN_OPTIONS and BUN_INSPECT (which the runtime applies before qmpctl runs) are refused: exit 2, nothing sent", async () => {
  // A --preload in it has run by then: qmpctl can only refuse to go on, saying why.
  let connections = 0;
  const listener = Bun.listen({ unix: join(dir, "never.sock"), socket: { open: () => void connections++, data() {} } });
  try {
    const settings: [string, string][] = [
      ["BUN_OPTIONS", "--smol"],
      ["BUN_OPTIONS", "--preload ./preload.js"],
      ["BUN_INSPECT", "127.0.0.1:0"], // a debugger's port, which the runtime opens
    ];
    for (const [name, value] of settings) {
      const result = await qmpctl(["-s", join(dir, "never.sock"), "exec", "query-status"], {
        cwd: dir,
        env: { [name]: value },
      });
      expect(result).toMatchObject({
        code: 2,
        stderr: `qmpctl: ${name} is set, and the Bun runtime inside qmpctl applied it: run without it\n`,
      });
    }
    expect(connections).toBe(0);
    rmSync(marker(), { force: true }); // the preload's
    expect(await qmpctl(["--version"], { cwd: dir, env: { BUN_OPTIONS: "" } })).toMatchObject({ code: 0, stderr: "" });
  } finally {
    listener.stop(true);
  }
});
