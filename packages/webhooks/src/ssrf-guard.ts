import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Which addresses a webhook may be sent to. By default only global unicast addresses: loopback,
 * RFC 1918 private, carrier-grade NAT, link-local (which holds the cloud metadata address
 * 169.254.169.254), unique-local IPv6 (fd00:ec2::254, another metadata address), multicast,
 * reserved and the IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4, Teredo) are refused.
 */
export interface SsrfPolicy {
  /**
   * CIDR ranges allowed even though they are not global unicast, e.g. `127.0.0.0/8` and `::1/128`
   * for tests with local receivers, or an internal network a deployment trusts.
   * @defaultValue []
   */
  allowedCidrs?: readonly string[];
  /**
   * Whether plain `http:` URLs are accepted (else only `https:`).
   * @defaultValue true
   */
  allowHttp?: boolean;
}

export type SsrfRefusalCode = 'invalid_url' | 'blocked_address' | 'unresolvable_host';

/** A target refused by the guard; `code` says why. */
export class SsrfRefusedError extends Error {
  override readonly name = 'SsrfRefusedError';
  constructor(
    readonly code: SsrfRefusalCode,
    message: string,
    readonly address?: string,
  ) {
    super(message);
  }
}

type ParsedCidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** A compiled {@link SsrfPolicy}. */
export class SsrfGuard {
  private readonly allowed: ParsedCidr[];
  readonly allowHttp: boolean;

  constructor(policy: SsrfPolicy = {}) {
    this.allowed = (policy.allowedCidrs ?? []).map((c) => {
      try {
        return ipaddr.parseCIDR(c.trim());
      } catch {
        throw new Error(`invalid CIDR in the webhook SSRF allowlist: ${c}`);
      }
    });
    this.allowHttp = policy.allowHttp ?? true;
  }

  /** Why an address is refused (its range name), or `null` when it may be connected to. */
  refusal(address: string): string | null {
    let ip: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      ip = ipaddr.parse(address);
    } catch {
      return 'unparsable';
    }
    if (this.isAllowlisted(ip)) return null;
    if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) {
      const v4 = (ip as ipaddr.IPv6).toIPv4Address();
      if (this.isAllowlisted(v4)) return null;
      const r4 = v4.range();
      return r4 === 'unicast' ? null : `ipv4Mapped/${r4}`;
    }
    const range = ip.range();
    return range === 'unicast' ? null : range;
  }

  private isAllowlisted(ip: ipaddr.IPv4 | ipaddr.IPv6): boolean {
    return this.allowed.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));
  }

  /** Validates the URL's form (scheme, no credentials); throws {@link SsrfRefusedError}. */
  parseUrl(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new SsrfRefusedError('invalid_url', 'the webhook url is not a valid absolute URL');
    }
    if (url.protocol !== 'https:' && !(this.allowHttp && url.protocol === 'http:')) {
      throw new SsrfRefusedError('invalid_url', `the webhook url must use ${this.allowHttp ? 'http or https' : 'https'}`);
    }
    if (url.username || url.password) {
      throw new SsrfRefusedError('invalid_url', 'the webhook url must not carry credentials');
    }
    return url;
  }

  /**
   * Resolves the URL's host and refuses it unless every address it resolves to is allowed.
   * Used when an endpoint is registered, for a clear early error; the delivery itself checks again
   * at connect time through {@link SsrfGuard.lookup} (DNS may change in between).
   */
  async check(raw: string): Promise<URL> {
    const url = this.parseUrl(raw);
    const host = hostOf(url);
    const addresses = isIP(host) ? [host] : await resolveAll(host);
    for (const a of addresses) this.assertAllowed(a, host);
    return url;
  }

  assertAllowed(address: string, host: string): void {
    const why = this.refusal(address);
    if (why !== null) {
      throw new SsrfRefusedError('blocked_address', `the webhook host ${host} resolves to ${address} (${why}), which is not allowed`, address);
    }
  }

  /**
   * A `lookup` for `http.request`: resolves like `dns.lookup` but fails when any resolved
   * address is refused. The socket connects to the address this returns, so the address checked
   * is the address connected to (no window for DNS rebinding between check and connect).
   */
  readonly lookup = (
    hostname: string,
    options: { all?: boolean; family?: number | string } | number | undefined,
    callback: (err: NodeJS.ErrnoException | null, address?: string | LookupAddress[], family?: number) => void,
  ): void => {
    const opts = typeof options === 'object' && options !== null ? options : {};
    dnsLookup(hostname, { all: true, family: normaliseFamily(opts.family) }, (err, addresses) => {
      if (err) return callback(err);
      try {
        if (addresses.length === 0) throw new SsrfRefusedError('unresolvable_host', `the webhook host ${hostname} did not resolve`);
        for (const a of addresses) this.assertAllowed(a.address, hostname);
      } catch (e) {
        return callback(e as NodeJS.ErrnoException);
      }
      if (opts.all) return callback(null, addresses);
      const first = addresses[0]!;
      callback(null, first.address, first.family);
    });
  };
}

function normaliseFamily(f: number | string | undefined): 0 | 4 | 6 {
  if (f === 4 || f === 'IPv4') return 4;
  if (f === 6 || f === 'IPv6') return 6;
  return 0;
}

/** The URL's host without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

function resolveAll(host: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(host, { all: true }, (err, addresses) => {
      if (err) reject(new SsrfRefusedError('unresolvable_host', `the webhook host ${host} did not resolve (${err.code ?? err.message})`));
      else resolve(addresses.map((a) => a.address));
    });
  });
}
