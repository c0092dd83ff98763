import { z } from 'zod';

/**
 * `models/<version>/manifest.json`: what a released model version is. Written by
 * `training/rehyat/export`, read by the API (validation limits, public model names) and by the
 * pipeline (files, shapes, state layout, sampler defaults). The parts below are the contract;
 * producers may add fields (the objects are loose), consumers ignore what they do not know.
 */
export const ManifestFile = z.looseObject({
  /** Path relative to the manifest's folder. */
  path: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().positive(),
});
export type ManifestFile = z.infer<typeof ManifestFile>;

export const ModelManifest = z.looseObject({
  format: z.literal(1),
  /** Release version, also the folder name under `models/`. */
  version: z.string().min(1),
  /** Public model names accepted in `model` on video creation. */
  models: z.looseObject({
    /** The ReHyAt student: chunk-major, streaming, constant memory. */
    student: z.string().min(1),
    /** The full-softmax teacher: whole video at once, for comparison. */
    teacher: z.string().min(1).optional(),
  }),
  video: z.looseObject({
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    fps: z.number().positive(),
    /** Pixel frames decoded from the first latent chunk. */
    first_chunk_frames: z.number().int().positive(),
    /** Pixel frames decoded from every later latent chunk. */
    chunk_frames: z.number().int().positive(),
  }),
  limits: z.looseObject({
    /** Accepted `size` values, `WIDTHxHEIGHT`. */
    sizes: z.array(z.string().regex(/^\d+x\d+$/)).min(1),
    min_seconds: z.number().positive(),
    max_seconds: z.number().positive(),
    /** Longest video the teacher can generate in one piece (it holds the whole video). */
    teacher_max_seconds: z.number().positive().optional(),
    max_prompt_chars: z.number().int().positive(),
    max_steps: z.number().int().positive(),
  }),
  sampler: z.looseObject({
    steps: z.number().int().positive(),
    shift: z.number().positive(),
    guidance: z.number().min(0),
  }),
  /** Every file of the release with its hash; the pipeline verifies them at load. */
  files: z.record(z.string(), ManifestFile),
});
export type ModelManifest = z.infer<typeof ModelManifest>;

/** Chunks a video of `seconds` needs, and the frames and seconds it then really has. */
export function planChunks(manifest: Pick<ModelManifest, 'video'>, seconds: number): {
  chunks: number;
  frames: number;
  seconds: number;
} {
  const { fps, first_chunk_frames: first, chunk_frames: per } = manifest.video;
  const wanted = Math.max(1, Math.round(seconds * fps));
  const chunks = wanted <= first ? 1 : 1 + Math.ceil((wanted - first) / per);
  const frames = first + (chunks - 1) * per;
  return { chunks, frames, seconds: frames / fps };
}
