// Validates models/<version>/manifest.json against the contract schema and checks file hashes.
// usage: npx tsx --conditions=development training/tests/node/validate-manifest.ts models/<version>
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelManifest } from '../../../packages/contracts/src/model-manifest.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: validate-manifest.ts <model dir>');
const manifest = ModelManifest.parse(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')));
for (const [key, f] of Object.entries(manifest.files)) {
  const buf = readFileSync(join(dir, f.path));
  const sha = createHash('sha256').update(buf).digest('hex');
  if (sha !== f.sha256 || buf.length !== f.bytes) throw new Error(`file ${key} (${f.path}) does not match its hash/size`);
}
console.log(JSON.stringify({ ok: true, version: manifest.version, files: Object.keys(manifest.files).length }));
