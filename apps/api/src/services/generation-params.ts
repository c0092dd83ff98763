import { randomInt } from 'node:crypto';
import { planChunks } from '@rehyat/contracts';
import { ApiError } from '../errors.js';
import type { ModelRegistry, RegisteredModel } from '../model-registry.js';

/** Everything a generation needs, resolved against the model's manifest. */
export interface GenerationParams {
  model: RegisteredModel;
  prompt: string;
  /** Seconds to generate (for an extension: the new part). */
  seconds: number;
  size: string;
  width: number;
  height: number;
  seed: number;
  steps: number;
  guidance: number;
  /** Chunks, frames and real seconds of the generated part. */
  plan: { chunks: number; frames: number; seconds: number };
}

export interface RawGenerationInput {
  prompt: string;
  model?: string | undefined;
  seconds?: number | string | undefined;
  size?: string | undefined;
  seed?: number | string | undefined;
  steps?: number | string | undefined;
  guidance?: number | string | undefined;
  input_reference?: unknown;
}

export const MAX_SEED = 2 ** 32 - 1;
export const MAX_GUIDANCE = 50;

function toNumber(value: number | string, param: string): number {
  const n = typeof value === 'number' ? value : value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(n)) throw new ApiError('invalid_value', `Invalid value for '${param}': expected a number, got '${value}'.`, { param });
  return n;
}

function toInteger(value: number | string, param: string, min: number, max: number): number {
  const n = toNumber(value, param);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ApiError('invalid_value', `Invalid value for '${param}': expected an integer from ${min} to ${max}, got ${value}.`, { param });
  }
  return n;
}

/** Resolves and checks the model and prompt (shared by create, remix and extension). */
export function resolveModel(models: ModelRegistry, name: string | undefined): RegisteredModel {
  const wanted = name ?? models.defaultModel;
  if (!wanted) throw new ApiError('model_not_found', 'No model is installed on this server.', { param: 'model' });
  const model = models.get(wanted);
  if (!model) {
    throw new ApiError('model_not_found', `The model '${wanted}' does not exist. Available: ${models.names().join(', ') || 'none'}.`, { param: 'model' });
  }
  return model;
}

export function checkPrompt(model: RegisteredModel, prompt: string): string {
  const trimmed = prompt.trim();
  if (trimmed.length === 0) throw new ApiError('invalid_value', "Invalid value for 'prompt': it must not be empty.", { param: 'prompt' });
  // Postgres text cannot hold NUL; refused here rather than failing the insert (of a whole batch).
  if (trimmed.includes('\u0000')) throw new ApiError('invalid_value', "Invalid value for 'prompt': it must not contain NUL characters.", { param: 'prompt' });
  const max = model.manifest.limits.max_prompt_chars;
  if ([...trimmed].length > max) {
    throw new ApiError('invalid_value', `Invalid value for 'prompt': at most ${max} characters for model '${model.name}'.`, { param: 'prompt' });
  }
  return trimmed;
}

export function checkSeconds(model: RegisteredModel, value: number | string | undefined): number {
  const { min_seconds: min } = model.manifest.limits;
  const max = model.maxSeconds;
  if (value === undefined) return Math.min(Math.max(4, min), max);
  const n = toNumber(value, 'seconds');
  if (n < min || n > max) {
    throw new ApiError('invalid_value', `Invalid value for 'seconds': must be from ${min} to ${max} for model '${model.name}', got ${value}.`, { param: 'seconds' });
  }
  return n;
}

/**
 * Checks a creation request against the model's manifest. Every failure is a 400 naming the
 * parameter (404 `model_not_found` for an unknown model, as OpenAI answers).
 */
export function resolveGenerationParams(models: ModelRegistry, input: RawGenerationInput): GenerationParams {
  if (input.input_reference !== undefined) {
    throw new ApiError('unsupported_parameter', "'input_reference' is not supported: this server generates from text only.", { param: 'input_reference' });
  }
  const model = resolveModel(models, input.model);
  const { manifest } = model;
  const prompt = checkPrompt(model, input.prompt);
  const seconds = checkSeconds(model, input.seconds);

  const native = `${manifest.video.width}x${manifest.video.height}`;
  const size = input.size ?? (manifest.limits.sizes.includes(native) ? native : manifest.limits.sizes[0]!);
  if (!manifest.limits.sizes.includes(size)) {
    throw new ApiError('invalid_value', `Invalid value for 'size': must be one of ${manifest.limits.sizes.join(', ')} for model '${model.name}', got '${size}'.`, { param: 'size' });
  }
  const [width, height] = size.split('x').map(Number) as [number, number];

  const seed = input.seed === undefined ? randomInt(0, 2 ** 31) * 2 + randomInt(0, 2) : toInteger(input.seed, 'seed', 0, MAX_SEED);
  const steps = input.steps === undefined ? manifest.sampler.steps : toInteger(input.steps, 'steps', 1, manifest.limits.max_steps);
  let guidance = manifest.sampler.guidance;
  if (input.guidance !== undefined) {
    guidance = toNumber(input.guidance, 'guidance');
    if (guidance < 0 || guidance > MAX_GUIDANCE) {
      throw new ApiError('invalid_value', `Invalid value for 'guidance': must be from 0 to ${MAX_GUIDANCE}, got ${input.guidance}.`, { param: 'guidance' });
    }
  }
  return { model, prompt, seconds, size, width, height, seed, steps, guidance, plan: planChunks(manifest, seconds) };
}
