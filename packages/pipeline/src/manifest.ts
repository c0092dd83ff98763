import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ModelManifest } from '@rehyat/contracts';

/** The model version is not installed, a file is missing, or a file failed its hash. */
export class ModelUnavailableError extends Error {
  override name = 'ModelUnavailableError';
  readonly code = 'model_unavailable' as const;
}

export interface LoadedManifest {
  manifest: ModelManifest;
  /** Folder holding manifest.json; file paths resolve against it. */
  dir: string;
  /** Absolute path of a manifest file entry. */
  path(fileKey: string): string;
}

export interface LoadManifestOptions {
  /**
   * Verify every listed file's size and sha256 before use. Costs one read of each file
   * (tens of ms for the shipped model). @defaultValue `true`
   */
  verify?: boolean;
}

/** Reads `models/<version>/manifest.json` (or the given manifest path) and verifies its files. */
export async function loadManifest(pathOrDir: string, opts: LoadManifestOptions = {}): Promise<LoadedManifest> {
  const file = pathOrDir.endsWith('.json') ? resolve(pathOrDir) : resolve(pathOrDir, 'manifest.json');
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (err) {
    throw new ModelUnavailableError(`model manifest ${file} cannot be read: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new ModelUnavailableError(`model manifest ${file} is not JSON: ${(err as Error).message}`);
  }
  const parsed = ModelManifest.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ModelUnavailableError(`model manifest ${file} is invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
  }
  const dir = dirname(file);
  const manifest = parsed.data;
  const loaded: LoadedManifest = {
    manifest,
    dir,
    path(key: string) {
      const entry = manifest.files[key];
      if (!entry) throw new ModelUnavailableError(`model ${manifest.version} has no file '${key}' in its manifest`);
      return join(dir, entry.path);
    },
  };
  if (opts.verify ?? true) {
    await Promise.all(Object.keys(manifest.files).map((key) => verifyFile(loaded, key)));
  }
  return loaded;
}

async function verifyFile(m: LoadedManifest, key: string): Promise<void> {
  const entry = m.manifest.files[key]!;
  const p = m.path(key);
  let size: number;
  try {
    size = (await stat(p)).size;
  } catch {
    throw new ModelUnavailableError(`model ${m.manifest.version}: file ${entry.path} (${key}) is missing from ${m.dir}`);
  }
  if (size !== entry.bytes) {
    throw new ModelUnavailableError(`model ${m.manifest.version}: file ${entry.path} has ${size} bytes, the manifest says ${entry.bytes}`);
  }
  const hash = createHash('sha256');
  for await (const part of createReadStream(p)) hash.update(part as Buffer);
  const got = hash.digest('hex');
  if (got !== entry.sha256) {
    throw new ModelUnavailableError(`model ${m.manifest.version}: file ${entry.path} fails its sha256 (got ${got}, manifest ${entry.sha256})`);
  }
}
