/**
 * Streaming NDJSON reader: yields one parsed value per non-empty line, as bytes arrive.
 */

/** Parse a byte stream of newline-delimited JSON values (`\n` or `\r\n`). */
export async function* readNdjson<T = unknown>(src: AsyncIterable<Buffer | string>): AsyncGenerator<T> {
  let pending = '';
  const decoder = new TextDecoder();
  for await (const chunk of src) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line) yield JSON.parse(line) as T;
    }
  }
  pending += decoder.decode();
  const last = pending.trim();
  if (last) yield JSON.parse(last) as T;
}
