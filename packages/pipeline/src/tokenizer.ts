import { z } from 'zod';

/**
 * The model's word-level tokenizer (`vocab.json`, written by `training/rehyat/text/tokenizer.py`).
 * The rule, identical to Python's: lower-case; take the runs matching `pattern` (`[a-z]+`); map
 * each to its id (unknown -> `unk_id`); prepend `bos_id`; truncate to `max_len`; pad with
 * `pad_id`. The empty prompt is the unconditional input of classifier-free guidance.
 */
export const VocabJson = z.object({
  type: z.literal('word-level'),
  lowercase: z.boolean(),
  pattern: z.string(),
  max_len: z.number().int().positive(),
  pad_id: z.number().int().min(0),
  unk_id: z.number().int().min(0),
  bos_id: z.number().int().min(0),
  vocab: z.array(z.string()).min(3),
});
export type VocabJson = z.infer<typeof VocabJson>;

export class Tokenizer {
  readonly maxLen: number;
  readonly #ids: Map<string, number>;
  readonly #pattern: RegExp;
  constructor(readonly spec: VocabJson) {
    this.maxLen = spec.max_len;
    this.#ids = new Map(spec.vocab.map((w, i) => [w, i]));
    this.#pattern = new RegExp(spec.pattern, 'g');
  }

  static fromJson(json: unknown): Tokenizer {
    return new Tokenizer(VocabJson.parse(json));
  }

  encode(text: string): number[] {
    const s = this.spec;
    const words = (s.lowercase ? text.toLowerCase() : text).match(this.#pattern) ?? [];
    const ids = [s.bos_id, ...words.map((w) => this.#ids.get(w) ?? s.unk_id)].slice(0, s.max_len);
    while (ids.length < s.max_len) ids.push(s.pad_id);
    return ids;
  }

  /** Words of `text` the vocabulary does not know (for warnings; they become `<unk>`). */
  unknownWords(text: string): string[] {
    const words = (this.spec.lowercase ? text.toLowerCase() : text).match(this.#pattern) ?? [];
    return words.filter((w) => !this.#ids.has(w));
  }

  /** int64 ids of a batch of prompts, `[texts.length, maxLen]` row-major. */
  batch(texts: readonly string[]): BigInt64Array {
    const out = new BigInt64Array(texts.length * this.maxLen);
    texts.forEach((t, r) => this.encode(t).forEach((id, c) => (out[r * this.maxLen + c] = BigInt(id))));
    return out;
  }
}
