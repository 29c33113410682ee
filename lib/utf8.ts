/**
 * Strict UTF-8: text from bytes that must be UTF-8 (a command-line word, the
 * `--args -` JSON), without replacing bad bytes by U+FFFD and without reading
 * a byte-order mark as another encoding (FF FE is not UTF-16 here: it is two
 * bytes that are not UTF-8).
 *
 * @module
 */

const strict = new TextDecoder("utf-8", { fatal: true });

/** `bytes` as text, or undefined when they are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strict.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * `bytes` for a message: the UTF-8 parts as text, each byte that is not part
 * of a UTF-8 character as `\xHH`; and where the first such byte is.
 */
export function showInvalidUtf8(bytes: Uint8Array): { text: string; firstBad: number } {
  let text = "", firstBad = -1, i = 0;
  while (i < bytes.length) {
    let length = 0;
    for (let n = 1; n <= 4 && i + n <= bytes.length; n++) {
      if (decodeUtf8(bytes.subarray(i, i + n)) !== undefined) {
        length = n;
        break;
      }
    }
    if (length > 0) {
      text += strict.decode(bytes.subarray(i, i + length));
      i += length;
    } else {
      if (firstBad < 0) firstBad = i;
      text += `\\x${bytes[i].toString(16).padStart(2, "0")}`;
      i++;
    }
  }
  return { text, firstBad };
}
