/** An inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Resolves an HTTP `Range` header against an object of `size` bytes (RFC 9110 single ranges:
 * `bytes=a-b`, `bytes=a-`, `bytes=-n`).
 *
 * @returns the inclusive range; `null` when the header is absent, malformed or asks for several
 *   ranges (serve the whole object, as the RFC allows); `'unsatisfiable'` when it lies outside the
 *   object (answer 416).
 */
export function resolveRange(header: string | undefined, size: number): ByteRange | null | 'unsatisfiable' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return null;
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (start >= size) return 'unsatisfiable';
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (end < start) return null;
  return { start, end };
}
