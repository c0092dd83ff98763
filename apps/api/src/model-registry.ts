import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelManifest } from '@rehyat/contracts';

/** One public model name and the release it belongs to. */
export interface RegisteredModel {
  /** Public name accepted in `model`, e.g. `rehyat-5` or `rehyat-5-teacher`. */
  name: string;
  role: 'student' | 'teacher';
  manifest: ModelManifest;
  /** Longest video this model accepts (the teacher holds the whole video, so it may be shorter). */
  maxSeconds: number;
}

export interface ModelRegistryOptions {
  /** Folder holding `<version>/manifest.json` per release. */
  modelsDir: string;
  /** Model used when a request names none. @defaultValue the student of the newest release */
  defaultModel?: string | undefined;
}

export class ModelRegistryError extends Error {
  override name = 'ModelRegistryError';
}

/**
 * The installed models, read once at boot from `models/<version>/manifest.json`. The API uses
 * it to validate requests (prompt length, seconds, size, steps) and to plan chunks; it never
 * loads weights.
 */
export class ModelRegistry {
  readonly #models = new Map<string, RegisteredModel>();
  readonly defaultModel: string | null;

  constructor(manifests: ModelManifest[], defaultModel?: string) {
    for (const manifest of manifests) {
      this.#add({ name: manifest.models.student, role: 'student', manifest, maxSeconds: manifest.limits.max_seconds });
      if (manifest.models.teacher) {
        const max = Math.min(manifest.limits.teacher_max_seconds ?? manifest.limits.max_seconds, manifest.limits.max_seconds);
        this.#add({ name: manifest.models.teacher, role: 'teacher', manifest, maxSeconds: max });
      }
    }
    if (defaultModel !== undefined && !this.#models.has(defaultModel)) {
      throw new ModelRegistryError(`DEFAULT_MODEL "${defaultModel}" is not in any installed manifest (have: ${this.names().join(', ') || 'none'})`);
    }
    const newest = [...manifests].sort((a, b) => b.version.localeCompare(a.version, 'en', { numeric: true }))[0];
    this.defaultModel = defaultModel ?? newest?.models.student ?? null;
  }

  #add(model: RegisteredModel): void {
    const existing = this.#models.get(model.name);
    if (existing) {
      throw new ModelRegistryError(`model name "${model.name}" is declared by releases ${existing.manifest.version} and ${model.manifest.version}`);
    }
    this.#models.set(model.name, model);
  }

  get(name: string): RegisteredModel | undefined {
    return this.#models.get(name);
  }

  names(): string[] {
    return [...this.#models.keys()].sort();
  }

  /** Reads every `<dir>/*\/manifest.json`. A missing folder gives an empty registry. */
  static async load(opts: ModelRegistryOptions): Promise<ModelRegistry> {
    let entries: string[];
    try {
      entries = (await readdir(opts.modelsDir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new ModelRegistry([], opts.defaultModel);
      throw err;
    }
    const manifests: ModelManifest[] = [];
    for (const dir of entries.sort()) {
      const file = join(opts.modelsDir, dir, 'manifest.json');
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const parsed = ModelManifest.safeParse(JSON.parse(text));
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
        throw new ModelRegistryError(`${file} is not a valid model manifest: ${issues}`);
      }
      if (parsed.data.version !== dir) {
        throw new ModelRegistryError(`${file} declares version "${parsed.data.version}" but lives in folder "${dir}"`);
      }
      manifests.push(parsed.data);
    }
    return new ModelRegistry(manifests, opts.defaultModel);
  }
}
