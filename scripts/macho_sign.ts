/**
 * Give a macOS binary a valid ad-hoc code signature, as Bun gives its
 * darwin-arm64 output: Bun 1.4.5 cross-builds darwin-x64 with the runtime's
 * own (Developer ID, hardened runtime) signature left in place, which no
 * longer matches once the bundle is inside, and macOS kills such a binary at
 * launch. No macOS tool is needed: an ad-hoc signature is a CodeDirectory of
 * SHA-256 page hashes in a SuperBlob, written where LC_CODE_SIGNATURE points.
 *   bun scripts/macho_sign.ts sign BINARY [IDENTIFIER]  re-sign it unless its signature holds
 *   bun scripts/macho_sign.ts check BINARY...            exit 1 unless each signature holds
 *   bun scripts/macho_sign.ts same BINARY                exit 1 unless signing it anew
 *                                                        gives its bytes (Bun's signer's)
 */
import { createHash } from "node:crypto";
import { readFileSync, renameSync, statSync, writeFileSync } from "node:fs";

const MH_MAGIC_64 = 0xfeedfacf;
const LC_SEGMENT_64 = 0x19;
const LC_CODE_SIGNATURE = 0x1d;
const SUPERBLOB_MAGIC = 0xfade0cc0;
const CODEDIRECTORY_MAGIC = 0xfade0c02;
const CODEDIRECTORY_VERSION = 0x20400; // with the executable segment fields, as Bun and ld write
const ADHOC_LINKER_SIGNED = 0x20002;
const EXECSEG_MAIN_BINARY = 1;
const CODEDIRECTORY_HEADER = 88;
const PAGE_SHIFT = 12;
const PAGE = 1 << PAGE_SHIFT;
const SHA256 = 2;

/** Where the load commands say the signature, __TEXT and __LINKEDIT are. */
interface Layout {
  signatureCommand: number; // offset of LC_CODE_SIGNATURE's dataoff field
  signatureOffset: number;
  signatureSize: number;
  textFileSize: number;
  linkedit: number; // offset of __LINKEDIT's segment command
}

function layoutOf(binary: Buffer): Layout {
  if (binary.readUInt32LE(0) !== MH_MAGIC_64) throw new Error("not a 64-bit little-endian Mach-O file");
  const commands = binary.readUInt32LE(16);
  let offset = 32;
  const found: Partial<Layout> = {};
  for (let i = 0; i < commands; i++) {
    const command = binary.readUInt32LE(offset);
    if (command === LC_CODE_SIGNATURE) {
      found.signatureCommand = offset + 8;
      found.signatureOffset = binary.readUInt32LE(offset + 8);
      found.signatureSize = binary.readUInt32LE(offset + 12);
    } else if (command === LC_SEGMENT_64) {
      const name = binary.toString("latin1", offset + 8, offset + 24).replace(/\0+$/, "");
      if (name === "__TEXT") found.textFileSize = Number(binary.readBigUInt64LE(offset + 48));
      if (name === "__LINKEDIT") found.linkedit = offset;
    }
    offset += binary.readUInt32LE(offset + 4);
  }
  if (found.signatureCommand === undefined || found.textFileSize === undefined || found.linkedit === undefined) {
    throw new Error("no LC_CODE_SIGNATURE, __TEXT or __LINKEDIT: not a binary Bun made");
  }
  return found as Layout;
}

/** The SHA-256 of each 4 KiB page before the signature (the last one as long as it is). */
function pageHashes(binary: Buffer, codeLimit: number): Buffer[] {
  const hashes: Buffer[] = [];
  for (let start = 0; start < codeLimit; start += PAGE) {
    hashes.push(createHash("sha256").update(binary.subarray(start, Math.min(start + PAGE, codeLimit))).digest());
  }
  return hashes;
}

/** The ad-hoc signature of the bytes before `codeLimit`, which must already hold its final header. */
function signature(binary: Buffer, layout: Layout, identifier: string): Buffer {
  const codeLimit = layout.signatureOffset;
  const hashes = pageHashes(binary, codeLimit);
  const hashOffset = CODEDIRECTORY_HEADER + identifier.length + 1;
  const directory = Buffer.alloc(hashOffset + hashes.length * 32);
  directory.writeUInt32BE(CODEDIRECTORY_MAGIC, 0);
  directory.writeUInt32BE(directory.length, 4);
  directory.writeUInt32BE(CODEDIRECTORY_VERSION, 8);
  directory.writeUInt32BE(ADHOC_LINKER_SIGNED, 12);
  directory.writeUInt32BE(hashOffset, 16);
  directory.writeUInt32BE(CODEDIRECTORY_HEADER, 20); // identOffset
  directory.writeUInt32BE(0, 24); // nSpecialSlots: no requirements, entitlements or Info.plist
  directory.writeUInt32BE(hashes.length, 28);
  directory.writeUInt32BE(codeLimit, 32);
  directory.writeUInt8(32, 36); // hashSize
  directory.writeUInt8(SHA256, 37);
  directory.writeUInt8(PAGE_SHIFT, 39);
  // 40-63: spare2, scatterOffset, teamOffset, spare3, codeLimit64 stay zero
  directory.writeBigUInt64BE(0n, 64); // execSegBase: __TEXT starts the file
  directory.writeBigUInt64BE(BigInt(layout.textFileSize), 72);
  directory.writeBigUInt64BE(BigInt(EXECSEG_MAIN_BINARY), 80);
  directory.write(identifier, CODEDIRECTORY_HEADER, "latin1");
  hashes.forEach((hash, i) => hash.copy(directory, hashOffset + i * 32));
  const superBlob = Buffer.alloc(20);
  superBlob.writeUInt32BE(SUPERBLOB_MAGIC, 0);
  superBlob.writeUInt32BE(20 + directory.length, 4);
  superBlob.writeUInt32BE(1, 8); // one blob: the CodeDirectory, slot 0
  superBlob.writeUInt32BE(0, 12);
  superBlob.writeUInt32BE(20, 16);
  return Buffer.concat([superBlob, directory]);
}

/** The binary signed anew: the signature replaced and __LINKEDIT sized to end with it. */
function signed(original: Buffer, identifier: string): Buffer {
  const layout = layoutOf(original);
  if (layout.signatureOffset + layout.signatureSize !== original.length) {
    throw new Error("the signature is not at the end of the file");
  }
  const size = 20 + CODEDIRECTORY_HEADER + identifier.length + 1 + Math.ceil(layout.signatureOffset / PAGE) * 32;
  const binary = Buffer.alloc(layout.signatureOffset + size);
  original.copy(binary, 0, 0, layout.signatureOffset);
  binary.writeUInt32LE(size, layout.signatureCommand + 4);
  const linkeditFileOffset = Number(binary.readBigUInt64LE(layout.linkedit + 40));
  const linkeditFileSize = binary.length - linkeditFileOffset;
  binary.writeBigUInt64LE(BigInt(linkeditFileSize), layout.linkedit + 48);
  const vmSize = Number(binary.readBigUInt64LE(layout.linkedit + 32));
  if (vmSize < linkeditFileSize) { // in 16 KiB pages, arm64's (a multiple of x86-64's 4 KiB)
    binary.writeBigUInt64LE(BigInt(Math.ceil(linkeditFileSize / 16384) * 16384), layout.linkedit + 32);
  }
  signature(binary, { ...layout, signatureSize: size }, identifier).copy(binary, layout.signatureOffset);
  return binary;
}

/** Why the binary's signature does not hold, or null when it does (what macOS checks of an ad-hoc one). */
function signatureFault(binary: Buffer): string | null {
  const layout = layoutOf(binary);
  const at = layout.signatureOffset;
  if (binary.readUInt32BE(at) !== SUPERBLOB_MAGIC) return "no SuperBlob where LC_CODE_SIGNATURE points";
  const blobs = binary.readUInt32BE(at + 8);
  for (let i = 0; i < blobs; i++) {
    if (binary.readUInt32BE(at + 12 + i * 8) !== 0) continue;
    const directory = at + binary.readUInt32BE(at + 16 + i * 8);
    if (binary.readUInt8(directory + 37) !== SHA256 || binary.readUInt8(directory + 39) !== PAGE_SHIFT) {
      throw new Error("its CodeDirectory is not of SHA-256 hashes of 4 KiB pages: not one this script can check");
    }
    const codeLimit = binary.readUInt32BE(directory + 32);
    if (codeLimit !== at) return `it covers ${codeLimit} bytes, not the ${at} before the signature`;
    const hashOffset = directory + binary.readUInt32BE(directory + 16);
    const hashes = pageHashes(binary, codeLimit);
    if (binary.readUInt32BE(directory + 28) !== hashes.length) return "its page count is wrong";
    const wrong = hashes.filter((hash, page) =>
      !hash.equals(binary.subarray(hashOffset + page * 32, hashOffset + page * 32 + 32))
    );
    return wrong.length ? `${wrong.length} of its ${hashes.length} page hashes do not match` : null;
  }
  return "no CodeDirectory";
}

function identifierOf(binary: Buffer): string {
  const at = layoutOf(binary).signatureOffset;
  const directory = at + binary.readUInt32BE(at + 16);
  const start = directory + binary.readUInt32BE(directory + 20);
  return binary.toString("latin1", start, binary.indexOf(0, start));
}

const [verb, ...files] = process.argv.slice(2);
if (verb === "sign" && (files.length === 1 || files.length === 2)) {
  const [file, identifier = "qmpctl"] = files;
  const binary = readFileSync(file);
  const fault = signatureFault(binary);
  if (fault) {
    // A new file renamed over the old: macOS keeps what it learnt of a file's signature with the file.
    writeFileSync(`${file}.signing`, signed(binary, identifier), { mode: statSync(file).mode });
    renameSync(`${file}.signing`, file);
    console.log(`${file}: signed ad hoc (its signature did not hold: ${fault})`);
  }
} else if (verb === "check" && files.length > 0) {
  let failed = false;
  for (const file of files) {
    const fault = signatureFault(readFileSync(file));
    console.log(`${file}: ${fault ? `signature invalid: ${fault}` : "signature valid"}`);
    failed ||= fault !== null;
  }
  process.exit(failed ? 1 : 0);
} else if (verb === "same" && files.length === 1) {
  const binary = readFileSync(files[0]);
  const same = signed(binary, identifierOf(binary)).equals(binary);
  console.log(`${files[0]}: signed anew here, ${same ? "the same bytes" : "different bytes"}`);
  process.exit(same ? 0 : 1);
} else {
  console.error("usage: bun scripts/macho_sign.ts sign BINARY [IDENTIFIER] | check BINARY... | same BINARY");
  process.exit(2);
}
