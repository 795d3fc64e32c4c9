/**
 * Duplicate JSON keys: `JSON.parse` keeps the last of `{"model":"allowed","model":"x"}`, but
 * an upstream parser may keep the first. A body or message checked against `allowModels` that
 * names a checked key more than once (in any spelling, `\u` escapes included) is refused
 * rather than guessed at.
 */

/** One open object (its watched keys seen so far) or array (`undefined`). */
type Open = Set<string> | undefined;

/**
 * Whether an object at most `maxDepth` levels deep (1 = the top-level object) has one of the
 * `watched` keys more than once. `text` must be valid JSON (it has been parsed already).
 */
export function hasDuplicateKey(
  text: string,
  watched: ReadonlySet<string>,
  maxDepth: number,
): boolean {
  const open: Open[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      let end = i + 1;
      let escaped = false;
      while (text.charCodeAt(end) !== 0x22) {
        if (text.charCodeAt(end) === 0x5c /* \ */) {
          escaped = true;
          end++;
        }
        end++;
      }
      const seen = open[open.length - 1];
      if (expectKey && seen !== undefined && open.length <= maxDepth) {
        const key = escaped
          ? (JSON.parse(text.slice(i, end + 1)) as string)
          : text.slice(i + 1, end);
        if (watched.has(key)) {
          if (seen.has(key)) return true;
          seen.add(key);
        }
      }
      expectKey = false;
      i = end;
    } else if (ch === 0x7b /* { */) {
      open.push(new Set());
      expectKey = true;
    } else if (ch === 0x5b /* [ */) {
      open.push(undefined);
      expectKey = false;
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      open.pop();
      expectKey = false;
    } else if (ch === 0x2c /* , */) {
      expectKey = open[open.length - 1] !== undefined;
    }
  }
  return false;
}
