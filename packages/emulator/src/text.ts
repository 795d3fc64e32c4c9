/** Deterministic model text: the default reply, streaming chunks and token counts. */

/** The default answer of every emulated model. */
export function defaultReply(prompt: string, model: string): string {
  return `Hello from the DashScope emulator (${model}). You said: "${prompt}".`;
}

/** Text of a message `content`: a string, or the `text` parts of a multimodal/OpenAI array. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => {
        if (typeof part === 'string') return part;
        if (
          part &&
          typeof part === 'object' &&
          typeof (part as { text?: unknown }).text === 'string'
        ) {
          return (part as { text: string }).text;
        }
        return '';
      })
      .filter((t) => t !== '')
      .join(' ');
  }
  return '';
}

/** The content of the last `user` message ('' when there is none). */
export function lastUserText(
  messages: ReadonlyArray<{ role?: unknown; content?: unknown }>,
): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role === 'user') return contentText(m.content);
  }
  return '';
}

/** Deterministic token count: whitespace-separated words (at least 1 for non-empty text). */
export function countTokens(text: string): number {
  const words = text.match(/\S+/g);
  return words ? words.length : 0;
}

/** Minimum number of pieces a streamed answer is split into (when the text allows it). */
export const MIN_CHUNKS = 4;

/**
 * Splits `text` into streaming pieces whose concatenation is `text`: about three words per
 * piece and at least {@link MIN_CHUNKS} pieces when the text has that many characters.
 */
export function splitIntoChunks(text: string): string[] {
  if (text === '') return [''];
  const words = text.match(/\s*\S+\s*/g) ?? [text];
  const perChunk = Math.max(1, Math.min(3, Math.floor(words.length / MIN_CHUNKS)));
  const chunks: string[] = [];
  for (let i = 0; i < words.length; i += perChunk)
    chunks.push(words.slice(i, i + perChunk).join(''));
  if (chunks.length >= MIN_CHUNKS || text.length < MIN_CHUNKS) return chunks;
  // Too few words: split by characters instead.
  const chars = [...text];
  const size = Math.ceil(chars.length / MIN_CHUNKS);
  const pieces: string[] = [];
  for (let i = 0; i < chars.length; i += size) pieces.push(chars.slice(i, i + size).join(''));
  return pieces;
}
