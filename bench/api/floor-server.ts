/**
 * The floor under `POST /v1/videos` on this machine: servers that answer the same request with a
 * fixed video object and do nothing else, measured with the same autocannon settings as the API
 * so the bench can tell how much of the raw-queue ceiling HTTP alone leaves.
 *
 *   node --conditions=development --import tsx bench/api/floor-server.ts <http|fastify> <port> <bearer-secret>
 *
 * - `http`: plain `node:http`: read the body, `JSON.parse`, answer 200 with the object.
 * - `fastify`: the API's HTTP layer with nothing behind it: Fastify with the API's options, a
 *   Bearer check against an in-memory hash (what a cached key lookup costs), the route's own zod
 *   body and response schemas (validation and serialization), and the metrics hook's work.
 * Prints `ready` on stdout once listening.
 */
import { createServer } from 'node:http';
import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { Counter, Histogram, Registry } from 'prom-client';
import { hashApiKey } from '../../apps/api/src/api-keys.js';
import { ApiError, errorResponses } from '../../apps/api/src/errors.js';
import { CreateVideoBody, Video } from '../../apps/api/src/schemas/videos.js';

const [kind, portArg, secret] = process.argv.slice(2);
const port = Number(portArg);
if ((kind !== 'http' && kind !== 'fastify') || !Number.isInteger(port) || !secret) {
  throw new Error('usage: floor-server.ts <http|fastify> <port> <bearer-secret>');
}

/** A video object as the API returns it for the bench's request (same fields, similar size). */
function videoObject(id: string) {
  const now = Math.floor(Date.now() / 1000);
  return {
    id,
    object: 'video' as const,
    created_at: now,
    status: 'queued' as const,
    model: 'rehyat-test',
    progress: 0,
    seconds: '2',
    size: '256x160',
    prompt: 'a red ball bounces across a blue floor',
    remixed_from_video_id: null,
    completed_at: null,
    expires_at: null,
    error: null,
    extended_from_video_id: null,
    seed: 1234567890,
    steps: 4,
    guidance: 1,
    queue_position: 123,
    chunks_total: 3,
    chunks: [],
    playlist_url: `http://127.0.0.1:${port}/v1/videos/${id}/playlist.m3u8?expires=1764200000&sig=${'0'.repeat(64)}`,
    usage: { gpu_ms: 0, frames: 0, seconds: 0 },
    cancel_requested_at: null,
    last_error: null,
  };
}
let n = 0;
const nextId = () => `video_${(n++).toString(16).padStart(32, '0')}`;

if (kind === 'http') {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const body = JSON.stringify(videoObject(nextId()));
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
} else {
  const app = Fastify({ logger: { level: 'error' }, bodyLimit: 1024 * 1024, trustProxy: true, routerOptions: { ignoreTrailingSlash: true } });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  const keys = new Map([[hashApiKey(secret), { id: 'key_floor' }]]);
  const registry = new Registry();
  const requests = new Counter({ name: 'requests', help: 'h', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const duration = new Histogram({ name: 'duration', help: 'h', labelNames: ['method', 'route'], registers: [registry] });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
  app.setErrorHandler((err, _request, reply) => {
    const e = err instanceof ApiError ? err : new ApiError('invalid_request', (err as Error).message);
    void reply.status(e.status).serializer(JSON.stringify).send(e.toBody());
  });
  app.addHook('onRequest', async (request) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    if (!m || !keys.get(hashApiKey(m[1]!))) throw new ApiError('invalid_api_key');
  });
  app.withTypeProvider<ZodTypeProvider>().post(
    '/v1/videos',
    { schema: { body: CreateVideoBody, response: { 200: Video, ...errorResponses(404, 409, 413, 415, 422, 503) } } },
    async () => videoObject(nextId()),
  );
  await app.listen({ host: '127.0.0.1', port });
  process.stdout.write('ready\n');
}
process.on('SIGTERM', () => process.exit(0));
