import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { ApiError } from '../errors.js';

/** Fastify's and its plugins' own error codes, mapped to the catalogue. */
const FASTIFY_CODES: Record<string, () => ApiError> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new ApiError('unsupported_media_type'),
  FST_ERR_CTP_BODY_TOO_LARGE: () => new ApiError('payload_too_large'),
  FST_REQ_FILE_TOO_LARGE: () => new ApiError('payload_too_large', 'An uploaded file is too large.'),
  FST_PARTS_LIMIT: () => new ApiError('payload_too_large', 'Too many multipart parts.'),
  FST_FILES_LIMIT: () => new ApiError('payload_too_large', 'Too many files.'),
  FST_FIELDS_LIMIT: () => new ApiError('payload_too_large', 'Too many fields.'),
  FST_ERR_CTP_EMPTY_JSON_BODY: () => new ApiError('invalid_json', 'The request body is empty; send a JSON object.'),
  FST_ERR_CTP_INVALID_JSON_BODY: () => new ApiError('invalid_json'),
  FST_INVALID_MULTIPART_CONTENT_TYPE: () => new ApiError('unsupported_media_type'),
  FST_PROTO_VIOLATION: () => new ApiError('invalid_request', 'The multipart body uses a forbidden field name.'),
};

type Context = 'body' | 'querystring' | 'params' | 'headers';

function valueAt(root: unknown, path: string[]): { present: boolean } {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || !(key in cur)) return { present: false };
    cur = (cur as Record<string, unknown>)[key];
  }
  return { present: cur !== undefined };
}

/** Turns a schema validation failure into one catalogue error naming the first bad parameter. */
function fromValidation(err: FastifyError, request: FastifyRequest): ApiError {
  const first = err.validation?.[0];
  if (!first) return new ApiError('invalid_request', err.message);
  const path = first.instancePath.split('/').filter(Boolean);
  const context = (err.validationContext ?? 'body') as Context;
  const params = first.params as Record<string, unknown>;
  if (first.keyword === 'unrecognized_keys') {
    const keys = (params.keys as string[] | undefined) ?? [];
    const name = [...path, keys[0] ?? ''].join('.');
    return new ApiError('unknown_parameter', `Unknown parameter: '${name}'.`, { param: name });
  }
  const name = path.join('.') || null;
  const source = (request as unknown as Record<Context, unknown>)[context];
  if (name && first.keyword === 'invalid_type' && !valueAt(source, path).present) {
    return new ApiError('missing_required_parameter', `Missing required parameter: '${name}'.`, { param: name });
  }
  const message = name ? `Invalid value for '${name}': ${first.message}` : `Invalid ${context}: ${first.message}`;
  return new ApiError('invalid_value', message, { param: name });
}

/** Maps any error to the catalogue; unknown errors become a logged 500 that reveals nothing. */
export function toApiError(err: unknown, request: FastifyRequest): ApiError {
  if (err instanceof ApiError) return err;
  const fe = err as FastifyError;
  if (hasZodFastifySchemaValidationErrors(fe) || (fe && Array.isArray(fe.validation))) return fromValidation(fe, request);
  if (fe && typeof fe.code === 'string' && FASTIFY_CODES[fe.code]) return FASTIFY_CODES[fe.code]!();
  if (fe && typeof fe === 'object' && 'method' in fe && isResponseSerializationError(fe)) {
    request.log.error({ err: fe, issues: fe.cause?.issues }, 'response does not match its schema');
    return new ApiError('internal_error');
  }
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new ApiError(fe.statusCode === 413 ? 'payload_too_large' : fe.statusCode === 415 ? 'unsupported_media_type' : 'invalid_request', fe.message);
  }
  request.log.error({ err }, 'unhandled error');
  return new ApiError('internal_error');
}

/**
 * `errors`: every error leaves the API in OpenAI's shape (see `../errors.ts`), unknown routes
 * included.
 */
export const errorsPlugin = fp(
  async (app: FastifyInstance) => {
    app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
      const apiError = toApiError(err, request);
      if (apiError.status >= 500) request.log.warn({ code: apiError.code }, apiError.message);
      void reply.status(apiError.status).type('application/json; charset=utf-8').serializer(JSON.stringify).send(apiError.toBody());
    });
    app.setNotFoundHandler((request, reply) => {
      const e = new ApiError('not_found', `No route for ${request.method} ${request.url.split('?')[0]}.`);
      void reply.status(404).send(e.toBody());
    });
  },
  { name: 'rehyat-errors', fastify: '5.x' },
);
