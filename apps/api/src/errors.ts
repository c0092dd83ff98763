import { z } from 'zod';

/**
 * The API's error catalogue. Every error the API returns is one of these codes, rendered in
 * OpenAI's shape `{ error: { message, type, param, code } }` with the listed status, so the
 * official `openai` client raises its typed errors (400 BadRequestError, 401
 * AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError, 409 ConflictError, 422
 * UnprocessableEntityError, 429 RateLimitError, 5xx InternalServerError).
 * Codes are never reused for another meaning.
 */
export const ERROR_CATALOGUE = {
  invalid_request: { status: 400, type: 'invalid_request_error', message: 'The request is invalid.' },
  invalid_json: { status: 400, type: 'invalid_request_error', message: 'The request body is not valid JSON.' },
  missing_required_parameter: { status: 400, type: 'invalid_request_error', message: 'A required parameter is missing.' },
  invalid_value: { status: 400, type: 'invalid_request_error', message: 'A parameter has an invalid value.' },
  unknown_parameter: { status: 400, type: 'invalid_request_error', message: 'Unknown parameter.' },
  unsupported_parameter: { status: 400, type: 'invalid_request_error', message: 'This parameter is not supported.' },
  missing_api_key: { status: 401, type: 'authentication_error', message: 'No API key provided. Send `Authorization: Bearer rh_...`.' },
  invalid_api_key: { status: 401, type: 'authentication_error', message: 'Incorrect API key provided.' },
  permission_denied: { status: 403, type: 'permission_error', message: 'This API key may not do that.' },
  not_found: { status: 404, type: 'invalid_request_error', message: 'No such route.' },
  video_not_found: { status: 404, type: 'invalid_request_error', message: 'No video with that id.' },
  model_not_found: { status: 404, type: 'invalid_request_error', message: 'The model does not exist.' },
  content_not_found: { status: 404, type: 'invalid_request_error', message: 'This content variant does not exist for the video.' },
  video_not_ready: { status: 409, type: 'invalid_request_error', message: 'The video content is not ready.' },
  video_not_cancellable: { status: 409, type: 'invalid_request_error', message: 'The video has already finished.' },
  video_in_progress: { status: 409, type: 'invalid_request_error', message: 'The video is being generated; cancel it before deleting it.' },
  video_not_completed: { status: 409, type: 'invalid_request_error', message: 'The source video has not completed.' },
  video_not_retryable: { status: 409, type: 'invalid_request_error', message: 'Only a failed video whose job is still kept can be retried.' },
  idempotency_key_reused: { status: 422, type: 'invalid_request_error', message: 'This Idempotency-Key was used with a different request body.' },
  payload_too_large: { status: 413, type: 'invalid_request_error', message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error', message: 'Send application/json or multipart/form-data.' },
  invalid_signature: { status: 403, type: 'permission_error', message: 'The URL signature is invalid.' },
  signature_expired: { status: 403, type: 'permission_error', message: 'The signed URL has expired.' },
  range_not_satisfiable: { status: 416, type: 'invalid_request_error', message: 'The requested byte range is outside the file.' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error', message: 'Too many requests.' },
  too_many_active_videos: { status: 429, type: 'rate_limit_error', message: 'Too many videos queued or in progress for this API key.' },
  queue_full: { status: 503, type: 'server_error', message: 'The generation queue is full; try again later.' },
  webhook_endpoint_not_found: { status: 404, type: 'invalid_request_error', message: 'No webhook endpoint with that id.' },
  webhook_delivery_not_found: { status: 404, type: 'invalid_request_error', message: 'No webhook delivery with that id for this endpoint.' },
  invalid_webhook_url: { status: 400, type: 'invalid_request_error', message: 'The webhook URL is not allowed.' },
  internal_error: { status: 500, type: 'server_error', message: 'The server had an error processing the request.' },
  service_unavailable: { status: 503, type: 'server_error', message: 'A dependency of the API is unavailable.' },
} as const satisfies Record<string, { status: number; type: string; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** An error the API answers with; `param` names the offending request parameter, if any. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly code: ErrorCode;
  readonly param: string | null;
  readonly status: number;
  readonly type: string;
  constructor(code: ErrorCode, message?: string, opts: { param?: string | null; cause?: unknown } = {}) {
    const entry = ERROR_CATALOGUE[code];
    super(message ?? entry.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.param = opts.param ?? null;
    this.status = entry.status;
    this.type = entry.type;
  }
  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** OpenAI's error body, also used as the response schema of every error status. */
export const ErrorBody = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.string(),
      param: z.string().nullable(),
      code: z.string().nullable(),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Response schemas of the error statuses a route can answer with. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorBody> {
  const out: Record<number, typeof ErrorBody> = {};
  for (const s of [400, 401, 500, ...statuses]) out[s] = ErrorBody;
  return out;
}
