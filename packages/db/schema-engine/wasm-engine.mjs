// @ts-check
/**
 * Loads Prisma's WebAssembly schema engine.
 *
 * The wasm is the one the pinned `prisma` CLI ships in its build folder (built from the CLI's
 * engines commit); its wasm-bindgen JS glue comes from `@prisma/schema-engine-wasm`, whose
 * published glue has the same imports and exports. `@prisma/schema-engine-wasm`'s own entry
 * imports the .wasm as an ES module, which Node 20 does not support, so the module is
 * instantiated here by hand.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** Path of the schema engine wasm shipped with the installed `prisma` CLI. */
export function schemaEngineWasmPath() {
  return join(dirname(require.resolve('prisma/package.json')), 'build', 'schema_engine_bg.wasm');
}

/**
 * Panics inside the wasm call `globalThis.PRISMA_WASM_PANIC_REGISTRY.set_message` before they
 * trap; the last message is kept here.
 */
class PanicRegistry {
  message = '';
  get() {
    return this.message;
  }
  /** @param {string} value */
  set_message(value) {
    this.message = `RuntimeError: ${value}`;
  }
}

/** @type {PanicRegistry} */
export const panicRegistry = new PanicRegistry();

/** @returns {Promise<any>} the glue module, bound to a fresh wasm instance */
export async function loadSchemaEngineWasm() {
  /** @type {any} */ (globalThis).PRISMA_WASM_PANIC_REGISTRY = panicRegistry;
  const glue = await import('@prisma/schema-engine-wasm/schema_engine_bg');
  const module = new WebAssembly.Module(readFileSync(schemaEngineWasmPath()));
  const instance = new WebAssembly.Instance(module, { './schema_engine_bg.js': glue });
  glue.__wbg_set_wasm(instance.exports);
  /** @type {any} */ (instance.exports).__wbindgen_start();
  return glue;
}

/** @param {unknown} error */
export function isWasmPanic(error) {
  return error instanceof WebAssembly.RuntimeError || (error instanceof Error && error.name === 'RuntimeError');
}
