/**
 * Which https:// requests go through a proxy, decided as the reference provider (Go's net/http, through
 * golang.org/x/net/http/httpproxy) decides it, so a proxied cluster's Key Vault traffic takes the same route after the
 * swap (the rules are on parseNoProxy).
 * No npm library follows these rules (proxy-from-env, the most used, matches bare entries exactly, prefers the lower
 * case variables and has no CIDR; the Azure SDK's policy has no CIDR and falls back to ALL_PROXY/HTTP_PROXY), so they
 * are written out here, with node:net's BlockList for address ranges.
 */
import { BlockList, isIP } from 'node:net';
import { domainToASCII } from 'node:url';

export interface NoProxyRules {
  /** Whether a request to this host and port goes direct. */
  bypasses(host: string, port: number): boolean;
}

interface AddressEntry {
  /** canonicalAddress() of the entry's address. */
  address: string;
  port: string;
}

interface DomainEntry {
  /** With a leading dot: ".example.com". */
  suffix: string;
  /** Whether the bare domain itself matches too (the entry had no leading dot). */
  matchesDomain: boolean;
  port: string;
}

/** The proxy variable for https requests, as Go reads it; undefined when none is set. */
export function httpsProxyFrom(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const raw = env['HTTPS_PROXY'] || env['https_proxy'] || undefined;
  return raw === undefined ? undefined : withDefaultScheme(raw);
}

/** NO_PROXY as Go reads it (upper case first; an empty value counts as unset). */
export function noProxyFrom(env: Readonly<Record<string, string | undefined>>): string {
  return env['NO_PROXY'] || env['no_proxy'] || '';
}

/** Go tries the value as a URL; when it has no scheme or host, it tries again with "http://" in front. */
function withDefaultScheme(value: string): string {
  try {
    const url = new URL(value);
    if (url.host !== '' && /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
  } catch {
    // fall through
  }
  return `http://${value}`;
}

/**
 * NO_PROXY parsed by Go's rules, which also decide the proxy variable (httpsProxyFrom, noProxyFrom):
 *  - the proxy for https is HTTPS_PROXY, else https_proxy (an empty value counts as unset); ALL_PROXY and HTTP_PROXY
 *    are never used for https;
 *  - a proxy value without a scheme ("proxy.corp:3128") means http://proxy.corp:3128;
 *  - NO_PROXY (else no_proxy) is a comma-separated list, entries trimmed and lower-cased, empty ones skipped:
 *    `*` alone bypasses the proxy for every host;
 *    an IP range in CIDR form (`10.0.0.0/8`, `fd00::/8`) matches any address inside it, on any port;
 *    an IP address, optionally with a port (`10.1.2.3`, `10.1.2.3:443`, `[fd00::1]:443`), matches that address;
 *    `example.com` matches example.com and every subdomain; `.example.com` and `*.example.com` only subdomains;
 *    a domain entry may carry a port (`example.com:8443`), and then matches only that port (https default 443);
 *    domain entries never match a host given as an IP address, and IP entries never match names;
 *  - localhost and loopback addresses are never proxied.
 */
export function parseNoProxy(value: string): NoProxyRules {
  const ranges = new BlockList();
  const addresses: AddressEntry[] = [];
  const domains: DomainEntry[] = [];
  for (const raw of value.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return { bypasses: () => true };
    const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
    if (cidr) {
      const family = isIP(cidr[1]!);
      const prefix = Number(cidr[2]);
      if (family !== 0 && prefix <= (family === 4 ? 32 : 128)) {
        ranges.addSubnet(cidr[1]!, prefix, family === 4 ? 'ipv4' : 'ipv6');
      }
      // Go skips an entry that is neither a CIDR nor anything below; a "/" cannot be in a host name.
      continue;
    }
    const { host, port } = splitHostPort(entry);
    if (host === '') continue;
    const family = isIP(host);
    if (family !== 0) {
      addresses.push({ address: canonicalAddress(host), port });
      continue;
    }
    const name = host.startsWith('*.') ? host.slice(1) : host;
    const matchesDomain = !name.startsWith('.');
    const domain = matchesDomain ? name : name.slice(1);
    // Go compares names in their ASCII (punycode) form, which is how URLs carry them.
    domains.push({ suffix: `.${domainToASCII(domain) || domain}`, matchesDomain, port });
  }
  return {
    bypasses(rawHost: string, portNumber: number): boolean {
      const name = unbracket(rawHost.trim().toLowerCase());
      // Addresses in one canonical text form (IPv6 compressed, IPv4-mapped as IPv4), so equal addresses compare equal.
      const host = isIP(name) !== 0 ? canonicalAddress(name) : name;
      if (isLocal(host)) return true;
      const port = String(portNumber);
      const family = isIP(host);
      if (family !== 0) {
        if (ranges.check(host, family === 4 ? 'ipv4' : 'ipv6')) return true;
        return addresses.some((a) => a.address === host && (a.port === '' || a.port === port));
      }
      return domains.some(
        (d) => (host.endsWith(d.suffix) || (d.matchesDomain && host === d.suffix.slice(1))) && (d.port === '' || d.port === port),
      );
    },
  };
}

/** "host:port", "[v6]:port", or a bare host (a bare IPv6 address has colons but no brackets: no port). */
function splitHostPort(entry: string): { host: string; port: string } {
  const bracketed = /^\[([^\]]*)\]:(\d*)$/.exec(entry);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2]! };
  const m = /^([^:]*):(\d*)$/.exec(entry);
  if (m) return { host: m[1]!, port: m[2]! };
  return { host: entry, port: '' };
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Go never proxies localhost or a loopback address (127.0.0.0/8, ::1); `host` is canonical. */
function isLocal(host: string): boolean {
  return host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.')) || host === '::1';
}

/**
 * "::ffff:10.1.2.3" or "::ffff:a01:203" (as URLs print it) → "10.1.2.3": Go compares addresses as 16 bytes, so an
 * IPv4 address and its IPv4-mapped IPv6 form are equal.
 */
function ipv4Mapped(host: string): string | undefined {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
  if (dotted) return dotted[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!hex) return undefined;
  const hi = parseInt(hex[1]!, 16);
  const lo = parseInt(hex[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** One text form per address: IPv4-mapped IPv6 as IPv4, IPv6 as the WHATWG URL parser serializes it (compressed). */
function canonicalAddress(address: string): string {
  const mapped = ipv4Mapped(address);
  if (mapped !== undefined) return mapped;
  if (isIP(address) !== 6) return address;
  const host = new URL(`http://[${address}]/`).hostname;
  return ipv4Mapped(unbracket(host)) ?? unbracket(host);
}
