export * from './generator.js';
export * from './rng.js';
export * from './checkpoint.js';
export * from './manifest.js';
export * from './sampler.js';
