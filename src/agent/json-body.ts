/**
 * JSON request bodies, strictly: `JSON.parse` decides what is valid JSON, and a small scanner
 * over the same (already valid) text refuses an object that names a key twice, at any depth.
 * JSON.parse keeps the last of two equal keys, so `{"slot":"1",…,"slot":"9"}` would mean one
 * thing to us and possibly another to a proxy or a log reader in front of us.
 */
import { InputError } from '../errors.js';

/** The first key found twice in one object, or undefined. `text` must be valid JSON. */
export function findDuplicateKey(text: string): string | undefined {
  // One entry per open object or array: the keys seen so far (undefined for an array) and
  // whether the next string in it is a key.
  const stack: Array<{ keys: Set<string> | undefined; expectKey: boolean }> = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) stack.push({ keys: new Set(), expectKey: true });
    else if (c === 0x5b /* [ */) stack.push({ keys: undefined, expectKey: false });
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    } else if (c === 0x22 /* " */) {
      const start = i;
      for (i++; text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c /* \ */) i++;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        // Decoded, so "a" and "\u0061" are the same key, as they are to JSON.parse.
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (top.keys.has(key)) return key;
        top.keys.add(key);
        top.expectKey = false;
      }
    }
  }
  return undefined;
}

/** Parses a request body; every refusal is an InputError naming what is wrong. */
export function parseJsonBody(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InputError(
      `the body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`,
      undefined,
      'INVALID_JSON',
    );
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) {
    throw new InputError(
      `the body names the key ${JSON.stringify(duplicate)} twice in one object`,
      undefined,
      'DUPLICATE_KEY',
    );
  }
  return value;
}
