// `scripts/bench.sh timeline` marks phases at anchors in the source: a change
// of that source must not leave the benchmark without its timeline.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { timelineMismatches } from "../scripts/bench_timeline.ts";

test("every anchor of the timeline benchmark is in the source exactly once", () => {
  expect(timelineMismatches(join(import.meta.dir, ".."))).toEqual([]);
});
