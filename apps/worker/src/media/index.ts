export * from './ffmpeg.js';
export * from './iso-bmff.js';
export * from './segment-encoder.js';
export * from './finalize.js';
export * from './probe.js';
