/**
 * Signed, expiring URLs for a video's playback resources (HLS playlist, fMP4 init segment, media
 * segments, SSE events), so that players and `EventSource`, which cannot send a Bearer header,
 * can fetch them.
 *
 * FOR THE VIDEO OBJECT (api helper): fill `playlist_url` and `chunks[].url` with
 * `playbackUrls(config)` (implements `PlaybackUrls` of services/video-view.ts), or directly with
 * `signedUrl(signing, baseUrl, path)`. Routes accept `?expires=<unix s>&sig=<base64url>` instead of
 * `Authorization: Bearer` (see `routes/playback-auth.ts`).
 *
 * One signature covers every playback resource of ONE video until `expires` (scope = video id),
 * so the playlist can hand its own `expires`/`sig` on to `init.mp4` and the segments with
 * relative URLs. sig = base64url(HMAC-SHA256(URL_SIGNING_SECRET, "rehyat-v1:<video id>:<expires>")).
 * `expires` is rounded up to a whole `EXPIRY_GRANULARITY_S`, so URLs stay identical for a while
 * (cacheable, stable across polls of the video object).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Config } from './config.js';
import type { PlaybackUrls } from './services/video-view.js';

export interface SigningOptions {
  /** HMAC key (`URL_SIGNING_SECRET`). */
  secret: string;
  /** Minimum lifetime of a new URL (`SIGNED_URL_TTL_S`). */
  ttlS: number;
  /** Clock in unix seconds. @defaultValue `Date.now() / 1000` */
  nowS?: () => number;
}

/** Expiry times are rounded up to this, so repeated signing yields the same URL for a while. */
export const EXPIRY_GRANULARITY_S = 300;

const PLAYBACK_PATH = /^\/v1\/videos\/(video_[0-9a-f]{32})\/[^?#]*$/;
const SIG_PATTERN = /^[A-Za-z0-9_-]{43}$/;

const nowS = (opts: { nowS?: () => number }) => (opts.nowS ? opts.nowS() : Date.now() / 1000);

/** The signature of `videoId` until `expires` (unix seconds). */
export function signature(secret: string, videoId: string, expires: number): string {
  return createHmac('sha256', secret).update(`rehyat-v1:${videoId}:${expires}`).digest('base64url');
}

/** A fresh `expires` for a URL signed now: at least `ttlS` ahead, rounded up. */
export function expiryFor(opts: SigningOptions): number {
  const at = Math.ceil(nowS(opts) + opts.ttlS);
  return Math.ceil(at / EXPIRY_GRANULARITY_S) * EXPIRY_GRANULARITY_S;
}

/** `expires=..&sig=..` for a video. */
export function signatureQuery(opts: SigningOptions, videoId: string, expires = expiryFor(opts)): string {
  return `expires=${expires}&sig=${signature(opts.secret, videoId, expires)}`;
}

/**
 * Signs a path under `/v1/videos/<id>/` (e.g. `/v1/videos/video_.../segments/0.m4s`) and returns
 * it with `?expires=..&sig=..` appended. Throws a RangeError for any other path.
 */
export function signedPath(opts: SigningOptions, path: string): string {
  const m = PLAYBACK_PATH.exec(path);
  if (!m) throw new RangeError(`signedPath: not a playback path of a video: ${path}`);
  return `${path}?${signatureQuery(opts, m[1]!)}`;
}

/** {@link signedPath} made absolute against the API's public origin (`PUBLIC_BASE_URL`). */
export function signedUrl(opts: SigningOptions, baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, '')}${signedPath(opts, path)}`;
}

export type SignatureCheck = 'valid' | 'absent' | 'malformed' | 'expired' | 'invalid';

/** Checks the `expires`/`sig` query parameters of a request for `videoId`. */
export function checkSignature(
  opts: Pick<SigningOptions, 'secret' | 'nowS'>,
  videoId: string,
  query: { expires?: unknown; sig?: unknown },
): SignatureCheck {
  const { expires, sig } = query;
  if (expires === undefined && sig === undefined) return 'absent';
  if (typeof expires !== 'string' || typeof sig !== 'string' || !/^\d{1,12}$/.test(expires) || !SIG_PATTERN.test(sig)) {
    return 'malformed';
  }
  const expected = Buffer.from(signature(opts.secret, videoId, Number(expires)));
  const given = Buffer.from(sig);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'invalid';
  if (Number(expires) < nowS(opts)) return 'expired';
  return 'valid';
}

/** Paths of a video's playback resources. */
export const playbackPaths = {
  playlist: (id: string) => `/v1/videos/${id}/playlist.m3u8`,
  init: (id: string) => `/v1/videos/${id}/init.mp4`,
  segment: (id: string, index: number) => `/v1/videos/${id}/segments/${index}.m4s`,
  events: (id: string) => `/v1/videos/${id}/events`,
} as const;

/** Signing options from the app's config. */
export function signingOptions(config: Pick<Config, 'URL_SIGNING_SECRET' | 'SIGNED_URL_TTL_S'>): SigningOptions {
  return { secret: config.URL_SIGNING_SECRET, ttlS: config.SIGNED_URL_TTL_S };
}

/** Signed absolute URLs of the playlist and segments, for the video object. */
export function playbackUrls(config: Pick<Config, 'URL_SIGNING_SECRET' | 'SIGNED_URL_TTL_S' | 'PUBLIC_BASE_URL'>): PlaybackUrls {
  const signing = signingOptions(config);
  return {
    playlist: (id) => signedUrl(signing, config.PUBLIC_BASE_URL, playbackPaths.playlist(id)),
    segment: (id, index) => signedUrl(signing, config.PUBLIC_BASE_URL, playbackPaths.segment(id, index)),
  };
}
