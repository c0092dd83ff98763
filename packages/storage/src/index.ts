export * from './errors.js';
export * from './range.js';
export * from './object-storage.js';
export * from './embedded-s3.js';
