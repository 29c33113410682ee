/** Byte arrays joined. @module */

/**
 * `parts` as one array of `length` bytes, their total, which callers keep as
 * the parts come (summing them here would be a JS builtin's first run on the
 * one-shot path). One part is returned as it is.
 */
export function concatBytes(parts: readonly Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const whole = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    whole.set(part, at);
    at += part.length;
  }
  return whole;
}
