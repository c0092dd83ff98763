export * from './event-id.js';
export * from './publish.js';
export * from './read.js';
export * from './cancel.js';
export * from './hub.js';
