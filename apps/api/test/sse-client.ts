/** A minimal Server-Sent Events reader over fetch, for tests and benchmarks. */
import type { ReadableStreamReadResult } from 'node:stream/web';

export interface SseMessage {
  id: string | null;
  event: string | null;
  data: string;
}

export interface SseReader {
  status: number;
  headers: Headers;
  /** The next message, comment lines as `{event: 'comment', data: text}`; null at end of stream. */
  next(): Promise<SseMessage | null>;
  /** The next event, skipping comment lines; null at end of stream. */
  nextEvent(): Promise<SseMessage | null>;
  /** Reads messages until the stream ends (comments dropped). */
  rest(): Promise<SseMessage[]>;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let done = false;
  const queue: SseMessage[] = [];

  const parseBlock = (block: string) => {
    const msg: SseMessage = { id: null, event: null, data: '' };
    const data: string[] = [];
    let comment: string | null = null;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comment = line.slice(1).trim();
      else if (line.startsWith('id: ')) msg.id = line.slice(4);
      else if (line.startsWith('event: ')) msg.event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (comment !== null && data.length === 0 && msg.event === null) queue.push({ id: null, event: 'comment', data: comment });
    else if (data.length > 0 || msg.event !== null) queue.push({ ...msg, data: data.join('\n') });
  };

  const next = async (): Promise<SseMessage | null> => {
    for (;;) {
      const queued = queue.shift();
      if (queued) return queued;
      if (done) return null;
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        done = true;
        continue;
      }
      if (chunk.done) {
        done = true;
        if (buffer.trim()) parseBlock(buffer);
        buffer = '';
        continue;
      }
      buffer += decoder.decode(chunk.value, { stream: true });
      let at: number;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        parseBlock(buffer.slice(0, at));
        buffer = buffer.slice(at + 2);
      }
    }
  };

  return {
    status: res.status,
    headers: res.headers,
    next,
    async nextEvent() {
      for (let m = await next(); m; m = await next()) if (m.event !== 'comment') return m;
      return null;
    },
    async rest() {
      const out: SseMessage[] = [];
      for (let m = await next(); m; m = await next()) if (m.event !== 'comment') out.push(m);
      return out;
    },
    close() {
      abort.abort();
    },
  };
}
