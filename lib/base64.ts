/**
 * Base64, as the guest agent carries file contents and program output
 * (`buf-b64`, `input-data`, `out-data`). Bun and Deno have the native
 * `Uint8Array.fromBase64` / `toBase64`; elsewhere `atob`/`btoa` in pieces.
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";

type NativeBase64 = {
  fromBase64?: (text: string) => Uint8Array;
};
type NativeBytes = Uint8Array & { toBase64?: () => string };

/** The base64 text of `bytes`. */
export function encodeBase64(bytes: Uint8Array): string {
  const native = (bytes as NativeBytes).toBase64;
  if (native) return native.call(bytes);
  let text = "";
  const piece = 0x3000 * 3; // a multiple of 3: the pieces' texts join without padding in between
  for (let i = 0; i < bytes.length; i += piece) {
    text += btoa(String.fromCharCode(...bytes.subarray(i, i + piece)));
  }
  return text;
}

/**
 * The bytes of base64 `text`.
 * @throws {ProtocolError} when the text is not base64 (`what` names where it came from)
 */
export function decodeBase64(text: string, what: string): Uint8Array {
  try {
    const native = (Uint8Array as unknown as NativeBase64).fromBase64;
    if (native) return native(text);
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch (error) {
    const start = text.length > 24 ? `${text.slice(0, 24)}...` : text;
    throw new ProtocolError(`${what} is not base64 (${JSON.stringify(start)})`, { cause: error });
  }
}
