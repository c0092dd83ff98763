/**
 * SSE fan-out: N concurrent `GET /v1/videos/:id/events` streams on ONE API process (V videos,
 * N/V clients each), then events published the way a worker does (`publishVideoEvent`: XADD)
 * and timed from just before the XADD to the moment each client has parsed the event.
 *
 *   npx tsx --conditions=development bench/api/sse-fanout.ts [--streams 1000] [--videos 100] [--webhooks false] [--out file]
 *
 * Phases: connect all streams; steady (one event every `--interval` ms, round-robin over videos);
 * burst (one event for every video at once, `--bursts` times); terminal event for every video and
 * time until every stream has closed.
 */
import http from 'node:http';
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { newVideoId, type VideoId } from '@rehyat/contracts';
import { publishVideoEvent } from '@rehyat/events';
import { createPrismaClient } from '@rehyat/db';
import { Keyspace } from '@rehyat/contracts';
import { cpuSeconds, createApiKey, machine, rssMiB, startApiProcess, startInfra, summarize } from './harness.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    streams: { type: 'string', default: '1000' },
    videos: { type: 'string', default: '100' },
    steady: { type: 'string', default: '1000' },
    interval: { type: 'string', default: '5' },
    bursts: { type: 'string', default: '20' },
    /** `false`: run the API with WEBHOOK_WORKER_ENABLED=false (no event-feed consumer in the process). */
    webhooks: { type: 'string', default: 'true' },
  },
});
const STREAMS = Number(values.streams);
const VIDEOS = Number(values.videos);
const STEADY_EVENTS = Number(values.steady);
const INTERVAL_MS = Number(values.interval);
const BURSTS = Number(values.bursts);

interface Client {
  video: VideoId;
  connectedMs: number;
  closed: Promise<void>;
}

const publishedAt = new Map<string, number>();
const receipts: { id: string; t: number }[] = [];
let received = 0;

function openStream(baseUrl: string, secret: string, video: VideoId, agent: http.Agent): Promise<Client> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get(
      `${baseUrl}/v1/videos/${video}/events`,
      { agent, headers: { authorization: `Bearer ${secret}`, accept: 'text/event-stream' } },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`stream of ${video}: HTTP ${res.statusCode}`));
          res.resume();
          return;
        }
        res.setEncoding('utf8');
        let buffer = '';
        let connected = false;
        const closed = new Promise<void>((done) => res.once('end', done).once('close', done));
        res.on('data', (chunk: string) => {
          const now = performance.now();
          if (!connected) {
            connected = true;
            resolve({ video, connectedMs: now - t0, closed });
          }
          buffer += chunk;
          let at: number;
          while ((at = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, at);
            buffer = buffer.slice(at + 2);
            if (block.startsWith('id: ')) {
              receipts.push({ id: block.slice(4, block.indexOf('\n')), t: now });
              received++;
            }
          }
        });
      },
    );
    req.on('error', reject);
  });
}

async function until(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (predicate()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return predicate();
}

async function metric(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return Number(text.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1]);
}

async function redisClients(redis: import('ioredis').Redis): Promise<number> {
  return Number(/connected_clients:(\d+)/.exec(await redis.info('clients'))?.[1]);
}

const infra = await startInfra('sse');
const apiEnv: Record<string, string> = values.webhooks === 'false' ? { WEBHOOK_WORKER_ENABLED: 'false' } : {};
const api = await startApiProcess(infra, apiEnv);
const keyspace = new Keyspace({ prefix: infra.prefix });
try {
  const machineLine = await machine(infra.redis);
  const key = await createApiKey(infra.db.url);
  const prisma = createPrismaClient({ databaseUrl: infra.db.url });
  const videos = Array.from({ length: VIDEOS }, () => newVideoId() as VideoId);
  await prisma.video.createMany({
    data: videos.map((id) => ({
      id,
      ownerId: key.id,
      status: 'in_progress' as const,
      prompt: 'bench',
      model: 'rehyat-test',
      seconds: 2,
      size: '256x160',
      width: 256,
      height: 160,
      seed: 1n,
      steps: 4,
      guidance: 1,
      chunksTotal: 1,
    })),
  });
  await prisma.$disconnect();

  const clientsBefore = await redisClients(infra.redis);
  const rss0 = await rssMiB(api.pid);

  // Connect: 50 at a time.
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const clients: Client[] = [];
  const tConnect = performance.now();
  for (let i = 0; i < STREAMS; i += 50) {
    const batch = Array.from({ length: Math.min(50, STREAMS - i) }, (_, j) => openStream(api.baseUrl, key.secret, videos[(i + j) % VIDEOS]!, agent));
    clients.push(...(await Promise.all(batch)));
  }
  const connectAllS = (performance.now() - tConnect) / 1000;
  const openStreams = await metric(api.baseUrl, 'rehyat_api_sse_connections');
  const tailedVideos = await metric(api.baseUrl, 'rehyat_api_sse_videos');
  const clientsDuring = await redisClients(infra.redis);
  const rss1 = await rssMiB(api.pid);
  const perVideo = STREAMS / VIDEOS;

  async function phase(name: string, run: () => Promise<number>) {
    receipts.length = 0;
    const start = received;
    const cpu0 = await cpuSeconds(api.pid);
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    const events = await run();
    const expected = events * perVideo;
    const complete = await until(() => received - start >= expected, 30_000);
    const wallS = (performance.now() - t0) / 1000;
    const cpu = (await cpuSeconds(api.pid)) - cpu0;
    const self = process.cpuUsage(self0);
    const lat = receipts.map((r) => r.t - publishedAt.get(r.id)!).filter((x) => Number.isFinite(x));
    return {
      phase: name,
      events,
      deliveriesExpected: expected,
      deliveriesReceived: received - start,
      complete,
      deliveriesPerS: Math.round((received - start) / wallS),
      apiCpuPercent: Math.round((cpu / wallS) * 100),
      loadGeneratorCpuPercent: Math.round(((self.user + self.system) / 1e6 / wallS) * 100),
      latencyMs: summarize(lat),
    };
  }

  const publish = async (video: VideoId) => {
    const t = performance.now();
    const id = await publishVideoEvent(infra.redis, keyspace, video, 'video.progress', {
      progress: 50,
      chunk: 0,
      chunks_total: 1,
      step: 2,
      steps_total: 4,
      eta: 1,
    });
    publishedAt.set(id, t);
  };

  const steady = await phase(`steady: ${STEADY_EVENTS} events, one every ${INTERVAL_MS} ms`, async () => {
    for (let i = 0; i < STEADY_EVENTS; i++) {
      void publish(videos[i % VIDEOS]!);
      await new Promise((r) => setTimeout(r, INTERVAL_MS));
    }
    return STEADY_EVENTS;
  });

  const burst = await phase(`burst: ${BURSTS} x one event per video at once (${VIDEOS} XADDs), 200 ms apart`, async () => {
    for (let b = 0; b < BURSTS; b++) {
      await Promise.all(videos.map((v) => publish(v)));
      await new Promise((r) => setTimeout(r, 200));
    }
    return BURSTS * VIDEOS;
  });

  // Terminal event: every stream must end.
  const tEnd = performance.now();
  await Promise.all(videos.map((v) => publishVideoEvent(infra.redis, keyspace, v, 'video.completed', { chunks_total: 1, seconds: 2 })));
  await Promise.all(clients.map((c) => c.closed));
  const allClosedMs = Math.round(performance.now() - tEnd);
  await until(() => false, 200);
  const openAfter = await metric(api.baseUrl, 'rehyat_api_sse_connections');

  const report = {
    bench: 'sse-fanout',
    date: new Date().toISOString(),
    machine: machineLine,
    apiEnv,
    streams: STREAMS,
    videos: VIDEOS,
    connect: {
      allConnectedS: Math.round(connectAllS * 100) / 100,
      timeToFirstByteMs: summarize(clients.map((c) => c.connectedMs)),
      openStreamsReportedByApi: openStreams,
      videosTailedByApi: tailedVideos,
      redisConnectionsAddedWhileStreaming: clientsDuring - clientsBefore,
      apiRssMiB: { before: rss0, with1000Streams: rss1 },
    },
    phases: [steady, burst],
    terminal: { allStreamsClosedMs: allClosedMs, openStreamsAfter: openAfter },
    loadAverageAtEnd: loadavg()[0]!.toFixed(2),
  };
  console.log(JSON.stringify(report, null, 2));
  if (values.out) await writeFile(values.out, `${JSON.stringify(report, null, 2)}\n`);
} finally {
  await api.stop();
  await infra.close();
}
