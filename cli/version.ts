/**
 * qmpctl's version: package.json's, plus the commit when the build came from
 * an untagged or modified tree (scripts/build.sh defines QMPCTL_BUILD_SUFFIX,
 * e.g. "+g1a2b3c4.dirty"); run from source it is package.json's alone.
 *
 * @module
 */
import packageJson from "../package.json" with { type: "json" };

declare const QMPCTL_BUILD_SUFFIX: string | undefined;

export const VERSION = packageJson.version +
  (typeof QMPCTL_BUILD_SUFFIX === "string" ? QMPCTL_BUILD_SUFFIX : "");
