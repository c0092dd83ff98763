import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackendOptions } from './backend.js';
import type { Generator } from './generator.js';
import { LoadedModel } from './loaded-model.js';
import { StudentGenerator } from './student-generator.js';
import { TeacherGenerator } from './teacher-generator.js';

/** A job named a model no installed manifest offers. */
export class UnknownModelError extends Error {
  override name = 'UnknownModelError';
}

export interface ModelRegistryOptions extends BackendOptions {
  /** Folder holding `<version>/manifest.json` per installed model. */
  modelsDir: string;
  /** Verify file hashes when a model is first loaded. @defaultValue true */
  verify?: boolean;
}

interface Entry {
  dir: string;
  role: 'student' | 'teacher';
}

/**
 * Public model names (`manifest.models.student` / `.teacher`) -> generators, loaded on first use
 * and kept open. Manifests are discovered under `modelsDir` at the first lookup.
 */
export class ModelRegistry {
  #names: Map<string, Entry> | undefined;
  #loaded = new Map<string, Promise<Generator>>();
  constructor(readonly options: ModelRegistryOptions) {}

  async names(): Promise<string[]> {
    return [...(await this.#scan()).keys()];
  }

  async get(name: string): Promise<Generator> {
    const entry = (await this.#scan()).get(name);
    if (!entry) {
      const known = [...(this.#names?.keys() ?? [])];
      throw new UnknownModelError(`model '${name}' is not installed on this worker (installed: ${known.join(', ') || 'none'})`);
    }
    let g = this.#loaded.get(name);
    if (!g) {
      g = (async () => {
        const { modelsDir: _dir, verify, ...backend } = this.options;
        const model = await LoadedModel.load(entry.dir, {
          ...backend,
          verify: verify ?? true,
          student: entry.role === 'student',
          teacher: entry.role === 'teacher',
        });
        return entry.role === 'student' ? new StudentGenerator(model) : new TeacherGenerator(model);
      })();
      this.#loaded.set(name, g);
      g.catch(() => this.#loaded.delete(name));
    }
    return g;
  }

  async close(): Promise<void> {
    for (const g of this.#loaded.values()) await (await g.catch(() => null))?.close();
    this.#loaded.clear();
  }

  async #scan(): Promise<Map<string, Entry>> {
    if (this.#names) return this.#names;
    const names = new Map<string, Entry>();
    let dirs: string[] = [];
    try {
      dirs = (await readdir(this.options.modelsDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    } catch {
      dirs = [];
    }
    for (const d of dirs) {
      const dir = join(this.options.modelsDir, d);
      try {
        const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { models?: { student?: string; teacher?: string } };
        if (m.models?.student) names.set(m.models.student, { dir, role: 'student' });
        if (m.models?.teacher) names.set(m.models.teacher, { dir, role: 'teacher' });
      } catch {
        // not a model folder
      }
    }
    this.#names = names;
    return names;
  }
}
