/** The progress line and its JSON form, without a terminal: what a person or a script reads. */
import { describe, expect, test } from "bun:test";
import {
  combine,
  formatBytes,
  formatSeconds,
  progressJson,
  progressLine,
  type ProgressSample,
} from "../cli/progress.ts";

const MiB = 1024 * 1024;
const sample: ProgressSample = {
  label: "backup b0",
  done: 256 * MiB,
  total: 1024 * MiB,
  rate: 128 * MiB,
  notes: ["pass 2"],
  json: { progress: "job", id: "b0" },
};

describe("progressLine", () => {
  test("a wide terminal: bar, percentage, amounts, rate, time left and notes", () => {
    expect(progressLine(sample, 99, false)).toBe(
      "[#####---------------] backup b0  25%  256.0 MiB/1.0 GiB  128.0 MiB/s  6s left  pass 2",
    );
  });

  test("never wider than the width: the figures are left out first, then the bar", () => {
    for (let width = 10; width <= 99; width++) {
      const line = progressLine(sample, width, false);
      expect(line.length).toBeLessThanOrEqual(width);
      if (width >= 14) expect(line).toContain("backup b0  25%");
    }
    expect(progressLine(sample, 30, false)).toBe("[###----------] backup b0  25%");
    expect(progressLine(sample, 20, false)).toBe("backup b0  25%");
  });

  test("narrower than the label and percentage: the label is cut, the percentage stays", () => {
    const long = { ...sample, label: "backup averyveryverylongjobidentifier25" };
    expect(progressLine(long, 25, false)).toBe("backup averyveryver…  25%");
    expect(progressLine(long, 7, false)).toBe("b…  25%");
    expect(progressLine(long, 5, false)).toBe("25%");
    expect(progressLine(long, 2, false)).toBe("25");
    expect(progressLine(long, 0, false)).toBe("");
  });

  test("colour only when asked: the filled part of the bar in green", () => {
    expect(progressLine(sample, 99, true)).toStartWith("[\x1b[32m#####\x1b[0m---------------] backup b0");
    expect(progressLine(sample, 99, false)).not.toContain("\x1b");
    expect(progressLine({ ...sample, done: 0 }, 99, true)).toStartWith("[--------------------] backup b0   0%");
  });

  test("several jobs: the sums, and the time left of the last to end (not of their combined rate)", () => {
    const fast = { ...sample, label: "backup y1", done: 0, total: 1024 * MiB, rate: 100 * MiB, notes: [] };
    const slow = { ...fast, label: "backup y2", rate: 50 * MiB };
    expect(progressLine(combine([fast, slow]), 99, false)).toBe(
      "[--------------------] 2 jobs   0%  0 B/2.0 GiB  150.0 MiB/s  21s left",
    );
  });

  test("without figures (a destination's migration): the label and notes alone, cut to the width", () => {
    const statusOnly = { label: "migration active", done: 0, total: 0, statusOnly: true, json: {} };
    expect(progressLine(statusOnly, 99, false)).toBe("migration active");
    expect(progressLine({ ...statusOnly, notes: ["x\x1b"] }, 99, false)).toBe("migration active  x\\x1b");
    expect(progressLine(statusOnly, 9, false)).toBe("migration");
    expect(progressLine(statusOnly, -3, false)).toBe("");
  });

  test("without a rate yet: no rate and no time left", () => {
    expect(progressLine({ ...sample, rate: undefined, notes: [] }, 99, false)).toBe(
      "[#####---------------] backup b0  25%  256.0 MiB/1.0 GiB",
    );
  });
});

describe("progressJson", () => {
  test("the sample's own members, then counters a script can use", () => {
    expect(progressJson(sample)).toEqual({
      progress: "job",
      id: "b0",
      done: 256 * MiB,
      total: 1024 * MiB,
      percent: 25,
      "bytes-per-second": 128 * MiB,
      "seconds-left": 6,
    });
  });

  test("without figures: the sample's own members alone, no counters of 0", () => {
    const json = { progress: "migration", status: "active" };
    expect(progressJson({ label: "migration active", done: 0, total: 0, statusOnly: true, json })).toEqual(json);
  });

  test("a total of 0 is 0 percent, not NaN", () => {
    expect(progressJson({ ...sample, done: 0, total: 0, rate: undefined })).toMatchObject({ percent: 0 });
  });
});

describe("formatBytes and formatSeconds", () => {
  test("bytes in binary units", () => {
    expect([0, 512, 1536, 256 * MiB, 1024 * MiB, 3 * 1024 ** 4].map(formatBytes)).toEqual([
      "0 B",
      "512 B",
      "1.5 KiB",
      "256.0 MiB",
      "1.0 GiB",
      "3.0 TiB",
    ]);
  });

  test("seconds rounded up, with minutes and hours", () => {
    expect([0.2, 42, 185, 3725].map(formatSeconds)).toEqual(["1s", "42s", "3m05s", "1h02m"]);
  });
});
