/** Keys given twice in one JSON object, which JSON.parse lets pass (keeping the last value). @module */

/**
 * The first key that an object in the JSON text `text` (valid JSON) names
 * twice, or undefined. Keys are compared decoded (`"\u0065xecute"` is
 * `execute`). QEMU refuses such JSON whole; `JSON.parse` keeps the last value.
 *
 * @example
 * ```ts
 * keyGivenTwice('{"name": "x", "name": "y"}'); // "name"
 * ```
 */
export function keyGivenTwice(text: string): string | undefined {
  const open: (Set<string> | undefined)[] = []; // per open container: an object's keys so far, or undefined (array)
  let expectingKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (expectingKey) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes("\\") ? JSON.parse(text.slice(i, end + 1)) as string : raw;
        const keys = open[open.length - 1]!;
        if (keys.has(key)) return key;
        keys.add(key);
        expectingKey = false;
      }
      i = end;
    } else if (c === "{") {
      open.push(new Set());
      expectingKey = true;
    } else if (c === "[") open.push(undefined);
    else if (c === "}" || c === "]") open.pop();
    else if (c === ",") expectingKey = open[open.length - 1] !== undefined;
  }
  return undefined;
}
