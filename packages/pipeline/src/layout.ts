import { z } from 'zod';
import type { ModelManifest } from '@rehyat/contracts';
import { ModelUnavailableError } from './manifest.js';

/**
 * What the pipeline needs from a manifest beyond the contract's part: latent geometry, the
 * recurrent state layout and the VAE decoder cache. Written by `training/rehyat/export`. This
 * module is the one place that maps the export's manifest onto the pipeline's needs.
 */
export const ModelLayoutSchema = z.looseObject({
  latent: z.looseObject({
    channels: z.number().int().positive(),
    height: z.number().int().positive(),
    width: z.number().int().positive(),
    /** Latent frames per chunk (Tc). */
    tc: z.number().int().positive(),
    /** Overlap latent frames (To): the K/V tail length in frames. */
    to: z.number().int().min(0),
    /** Pixel frames per latent frame. */
    temporal: z.number().int().positive(),
  }),
  state: z.looseObject({
    layers: z.number().int().positive(),
    heads: z.number().int().positive(),
    head_dim: z.number().int().positive(),
    feature_dim: z.number().int().positive(),
    tokens_per_frame: z.number().int().positive(),
  }),
  /** Decoder cache tensors, per batch element: shape without the batch axis. */
  vae_cache: z.array(z.looseObject({ name: z.string(), shape: z.array(z.number().int().min(0)) })),
  text: z.looseObject({ max_len: z.number().int().positive(), dim: z.number().int().positive() }),
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
    v: 'v',
    /** State inputs and the matching outputs (`<name>_out`), in this order. */
    state: ['S', 'z', 'k_tail', 'v_tail', 'fk_tail'] as const,
  },
  teacher: { x: 'x', t: 't', context: 'context', v: 'v' },
  vae: { z: 'z', frames: 'frames' },
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
  const { layers: L, heads: H, head_dim: d, feature_dim: dp } = l.state;
  return { S: [L, b, H, dp, d], z: [L, b, H, dp], k_tail: [L, b, H, 0, d], v_tail: [L, b, H, 0, d], fk_tail: [L, b, H, 0, dp] };
}
