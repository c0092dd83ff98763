export * from './dashboard.js';
export * from './deadline.js';
export * from './queues.js';
export * from './videos.js';
export * from './workers.js';
