export { buildApp, API_VERSION, type BuildAppOptions } from './app.js';
export { loadConfig, ConfigSchema, ConfigError, type Config } from './config.js';
export { ApiError, ERROR_CATALOGUE, ErrorBody, type ErrorCode } from './errors.js';
export { ModelRegistry, ModelRegistryError, type RegisteredModel } from './model-registry.js';
export { generateApiKey, hashApiKey, API_KEY_PATTERN } from './api-keys.js';
export { ApiKeyService, type ApiKeyRole, type ApiKeySummary, type CreateApiKeyOptions } from './services/api-key-service.js';
export { VideoService, hashRequest } from './services/video-service.js';
export { Video, VideoList, CreateVideoBody, ExtendVideoBody, RemixVideoBody } from './schemas/videos.js';
