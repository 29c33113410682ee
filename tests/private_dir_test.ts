/**
 * The private-directory rules that the schema cache and the shell's history
 * share (lib/private_dir.ts), as pure decisions on a stat's owner and mode.
 */
import { describe, expect, test } from "bun:test";
import {
  aboveReason,
  isPrivate,
  notOursReason,
  notOurTreeReason,
  othersMayWrite,
  ownUid,
  parentDir,
  tooOpen,
} from "../lib/private_dir.ts";

describe("private directory rules", () => {
  test("ownUid is the effective uid, the one files are created with", () => {
    expect(ownUid()).toBe(process.geteuid!());
  });

  test("notOursReason names both uids; an unknown uid checks nothing", () => {
    expect(notOursReason(1000, 1000)).toBeUndefined();
    expect(notOursReason(65534, 0)).toBe("belongs to uid 65534, not to this user (uid 0)");
    expect(notOursReason(65534, undefined)).toBeUndefined();
  });

  test("isPrivate: ours, and writable by no one else (group or others); readable by them is no matter", () => {
    expect(isPrivate({ uid: 0, mode: 0o40700 }, 0)).toBe(true);
    expect(isPrivate({ uid: 0, mode: 0o40755 }, 0)).toBe(true);
    expect(isPrivate({ uid: 0, mode: 0o40770 }, 0)).toBe(false);
    expect(isPrivate({ uid: 0, mode: 0o40702 }, 0)).toBe(false);
    expect(isPrivate({ uid: 65534, mode: 0o40700 }, 0)).toBe(false);
  });

  test("tooOpen and othersMayWrite: any group or other bit is tightened, a write bit makes it shared", () => {
    expect([0o700, 0o740, 0o701, 0o600].map(tooOpen)).toEqual([false, true, true, false]);
    expect([0o755, 0o775, 0o757, 0o1777].map(othersMayWrite)).toEqual([false, true, true, true]);
  });

  test("notOurTreeReason: a directory is created only under one of ours (not under a user's HOME when root)", () => {
    expect(notOurTreeReason("/root", { uid: 0, mode: 0o40700 }, 0)).toBeUndefined();
    expect(notOurTreeReason("/home/alice", { uid: 1000, mode: 0o40755 }, 0)).toBe(
      "its directory would be created in /home/alice, which belongs to uid 1000, not to this user (uid 0)",
    );
    expect(notOurTreeReason("/tmp", { uid: 0, mode: 0o41777 }, 1000)).toBeUndefined(); // anyone's to make one in
    expect(notOurTreeReason("/var/cache", { uid: 0, mode: 0o40755 }, 1000)).toBe(
      "its directory would be created in /var/cache, which belongs to uid 0, not to this user (uid 1000)",
    );
  });

  test("aboveReason: root's or ours, and not writable by others unless sticky (as OpenSSH's StrictModes)", () => {
    expect(aboveReason({ uid: 0, mode: 0o40755 }, 1000)).toBeUndefined();
    expect(aboveReason({ uid: 0, mode: 0o41777 }, 1000)).toBeUndefined(); // /tmp
    expect(aboveReason({ uid: 1000, mode: 0o40700 }, 1000)).toBeUndefined();
    expect(aboveReason({ uid: 1001, mode: 0o40755 }, 1000)).toBe("belongs to uid 1001");
    expect(aboveReason({ uid: 1000, mode: 0o40777 }, 1000)).toBe("is writable by others (mode 777)");
    // Under umask 002: a directory of ours that our own group may write to (Debian's OpenSSH allows it too).
    expect(aboveReason({ uid: 1000, gid: 1000, mode: 0o40775 }, 1000, 1000)).toBeUndefined();
    expect(aboveReason({ uid: 1000, gid: 100, mode: 0o40775 }, 1000, 1000)).toBe("is writable by others (mode 775)");
    expect(aboveReason({ uid: 0, gid: 1000, mode: 0o40775 }, 1000, 1000)).toBe("is writable by others (mode 775)");
  });

  test("parentDir of an absolute path", () => {
    expect([parentDir("/a/b/c"), parentDir("/a"), parentDir("/")]).toEqual(["/a/b", "/", "/"]);
  });
});
