import { z } from 'zod';
import type { ModelManifest } from '@rehyat/contracts';
import { ModelUnavailableError } from './manifest.js';

/**
 * What the pipeline needs from a manifest beyond the contract's part: latent geometry, the
 * recurrent state layout and the VAE decoder cache, as written by
 * `training/rehyat/export/manifest.py` (io names in `training/rehyat/export/graphs.py`). This
 * module is the one place that maps the export onto the pipeline's needs.
 */
export const ModelLayoutSchema = z.looseObject({
  latent: z.looseObject({
    channels: z.number().int().positive(),
    height: z.number().int().positive(),
    width: z.number().int().positive(),
  }),
  student: z.looseObject({
    /** Latent frames per chunk (Tc). */
    tc_latent_frames: z.number().int().positive(),
    /** Overlap latent frames (To): the K/V tail length in frames. */
    to_latent_frames: z.number().int().min(0),
    tokens_per_latent_frame: z.number().int().positive(),
    layers: z.number().int().positive(),
    heads: z.number().int().positive(),
    head_dim: z.number().int().positive(),
    feature_dim: z.number().int().positive(),
  }),
  vae_decoder: z.looseObject({
    /** Decoder cache tensors with their shape for batch 1; fed back as `<name>_out` -> `<name>`. */
    caches: z.array(z.looseObject({ name: z.string(), shape: z.array(z.number().int().min(0)) })),
  }),
  tokenizer: z.looseObject({ max_len: z.number().int().positive() }).optional(),
});
export type ModelLayout = z.infer<typeof ModelLayoutSchema>;

/** Input and output names of the exported graphs (fixed by the export). */
export const IO = {
  textEncoder: { ids: 'ids', context: 'context' },
  ditStep: {
    x: 'x',
    t: 't',
    context: 'context',
    frameOffset: 'frame_offset',
    v: 'velocity',
    /** State inputs and the matching outputs (`<name>_out`), in this order. */
    state: ['S', 'z', 'k_tail', 'v_tail', 'fk_tail'] as const,
  },
  teacher: { x: 'x', t: 't', context: 'context', v: 'velocity' },
  /** `frames` is float32 `[B, F, H, W, 3]` RGB in [0, 1]. */
  vae: { z: 'latent', frames: 'frames' },
} as const;

export const stateOut = (name: string) => `${name}_out`;

export function readLayout(manifest: ModelManifest): ModelLayout {
  const parsed = ModelLayoutSchema.safeParse(manifest);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ModelUnavailableError(
      `model ${manifest.version}: manifest lacks the pipeline layout at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
    );
  }
  return parsed.data;
}

/** Empty recurrent state of one denoising step for batch `b` (zeros; tails of length 0). */
export function emptyStateDims(l: ModelLayout, b: number): Record<(typeof IO.ditStep.state)[number], number[]> {
  const { layers: L, heads: H, head_dim: d, feature_dim: dp } = l.student;
  return { S: [L, b, H, dp, d], z: [L, b, H, dp], k_tail: [L, b, H, 0, d], v_tail: [L, b, H, 0, d], fk_tail: [L, b, H, 0, dp] };
}
