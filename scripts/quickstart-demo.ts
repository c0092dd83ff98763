// The quick start's demo: one real video through the public API with the official openai client.
// Prints where to watch it while it is generating, follows its live events, downloads the MP4 and
// probes it. Reads REHYAT_BASE_URL and REHYAT_API_KEY (set by scripts/quickstart.sh).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import OpenAI from 'openai';

const baseURL = process.env.REHYAT_BASE_URL ?? 'http://127.0.0.1:8080/v1';
const apiKey = process.env.REHYAT_API_KEY;
if (!apiKey) throw new Error('REHYAT_API_KEY is not set (scripts/quickstart.sh creates one)');
const client = new OpenAI({ baseURL, apiKey });

const prompt = process.argv[2] ?? 'a red circle bounces on a blue background';
const video = await client.videos.create({ prompt, seconds: '4' as never });
const v = video as typeof video & { playlist_url?: string };
console.log(`    created ${video.id} (${video.status}): "${prompt}"`);
console.log(`    watch it while it generates:  ${v.playlist_url}`);
console.log(`      (HLS; e.g. ffplay '${v.playlist_url}' or any HLS player)`);
console.log(`    live events (SSE):            curl -N -H 'Authorization: Bearer ${apiKey}' ${baseURL}/videos/${video.id}/events`);

// Follow the live events until the terminal one.
const res = await fetch(`${baseURL}/videos/${video.id}/events`, { headers: { authorization: `Bearer ${apiKey}` } });
if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
const decoder = new TextDecoder();
let buffer = '';
let terminal = '';
outer: for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
  buffer += decoder.decode(part, { stream: true });
  let cut;
  while ((cut = buffer.indexOf('\n\n')) >= 0) {
    const block = buffer.slice(0, cut);
    buffer = buffer.slice(cut + 2);
    const type = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (!type || !data) continue;
    const d = JSON.parse(data) as { data?: Record<string, unknown> } & Record<string, unknown>;
    const body = (d.data ?? d) as Record<string, unknown>;
    if (type === 'video.progress') {
      process.stdout.write(`\r    progress ${Math.round(Number(body.progress)).toString().padStart(3)}%  chunk ${Number(body.chunk) + 1}/${body.chunks_total}  step ${body.step}/${body.steps_total}   `);
    } else if (type === 'video.chunk') {
      process.stdout.write(`\n    chunk ${body.index} ready (${body.duration} s) - already playable\n`);
    } else {
      process.stdout.write(`\n    ${type}\n`);
    }
    if (type === 'video.completed' || type === 'video.failed' || type === 'video.cancelled') {
      terminal = type;
      break outer;
    }
  }
}
const final = await client.videos.retrieve(video.id);
if (terminal !== 'video.completed') {
  throw new Error(`the video ended ${final.status}: ${JSON.stringify(final.error)}`);
}
const content = await client.videos.downloadContent(video.id);
const out = '.data/quickstart.mp4';
writeFileSync(out, Buffer.from(await content.arrayBuffer()));
const probe = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-show_entries',
  'stream=codec_name,width,height,r_frame_rate,nb_read_frames:format=duration', '-of', 'compact=p=0:nk=0', out]).toString().trim();
console.log(`    downloaded ${out}: ${probe.replace(/\n/g, ' | ')}`);
console.log(`    usage: ${JSON.stringify((final as unknown as { usage?: unknown }).usage)}`);
