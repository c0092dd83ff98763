export * from './request-rate.js';
export * from './active-videos.js';
export * from './fair-priority.js';
export * from './admission.js';
export * from './headers.js';
export * from './request-limits.js';
