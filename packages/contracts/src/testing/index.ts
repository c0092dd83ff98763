export { deleteRedisPrefix, type DeleteRedisPrefixOptions, type PrefixScanningRedis } from './redis-prefix.js';
