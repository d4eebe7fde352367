/**
 * HTTPS connections to Key Vault and Entra ID, kept alive and shared by every reader and credential (all mounts, all
 * identities) of the process.
 *
 * Why not the SDK's own: each SDK client keeps its own connection pool, and behind HTTPS_PROXY it uses a proxy agent
 * without keep-alive, so every request opened a new CONNECT tunnel and a new TLS session (AKS clusters with an egress
 * proxy paid that on every read). Here one keep-alive agent per route is shared: direct, or one per proxy.
 */
import type { Agent } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions } from 'node:https';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { httpsProxyFrom, noProxyFrom, parseNoProxy } from './proxy-rules';

export interface ProxySettings {
  /** The proxy for https:// requests; undefined for none. */
  proxyUrl: string | undefined;
  /** NO_PROXY entries, trimmed, without empties. */
  noProxy: string[];
}

/** Reads the proxy variables the way the reference (Go) does (main.ts passes process.env). */
export function proxySettingsFrom(env: Readonly<Record<string, string | undefined>>): ProxySettings {
  const noProxy = noProxyFrom(env)
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  return { proxyUrl: httpsProxyFrom(env), noProxy };
}

/** Whether NO_PROXY exempts an https request to `host` (port 443), by Go's rules (see proxy-rules.ts). */
export function bypassesProxy(host: string, noProxy: readonly string[], port = 443): boolean {
  return parseNoProxy(noProxy.join(',')).bypasses(host, port);
}

/**
 * Whether a proxy variable is a URL the tunnel agent can use. "proxy.corp:3128" parses as a URL with the scheme
 * "proxy.corp:" and no host, and would send every tunnel to localhost:80 (proxySettingsFrom gives it http://, as Go
 * does); socks5:// and other schemes are not supported.
 */
function isProxyUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

export interface ConnectionOptions {
  /** Connections per vault host; the vault gate keeps requests at or below this, so none waits for a socket. */
  maxSocketsPerHost: number;
}

/**
 * Which requests go through the proxy follows the reference provider's (Go's) rules, in proxy-rules.ts: HTTPS_PROXY
 * only, NO_PROXY with subdomains, `*`, addresses and CIDR ranges. A cluster's Key Vault traffic takes the same route
 * as it did with the reference. Entra ID token requests use these agents too (bounded-http.ts sets the agent after the
 * SDK's proxy policy has run), so the SDK's own rules, which differ, never choose a route.
 */
export class KeyVaultConnections {
  private readonly agents = new Map<string, Agent>();

  constructor(
    private readonly proxy: ProxySettings,
    private readonly options: ConnectionOptions,
  ) {
    if (proxy.proxyUrl !== undefined && !isProxyUrl(proxy.proxyUrl)) {
      // Named without its value: a proxy URL can carry credentials.
      throw new Error('HTTPS_PROXY is not a valid URL for a proxy: it needs http:// or https:// and a host');
    }
  }

  /** The shared agent for requests to this vault URL. */
  agentFor(vaultUrl: string): Agent {
    const { hostname, port } = new URL(vaultUrl);
    const bypassed = bypassesProxy(hostname, this.proxy.noProxy, Number(port) || 443);
    const proxyUrl = this.proxy.proxyUrl !== undefined && !bypassed ? this.proxy.proxyUrl : undefined;
    const route = proxyUrl ?? 'direct';
    let agent = this.agents.get(route);
    if (!agent) {
      const options: AgentOptions = {
        keepAlive: true,
        maxSockets: this.options.maxSocketsPerHost,
        maxFreeSockets: this.options.maxSocketsPerHost,
        // Reuse the most recently used connection first, so idle ones age out and the pool shrinks after a burst.
        scheduling: 'lifo',
        // Close a connection idle for this long: before the 4-minute idle timeout of Azure's load balancers and NAT
        // gateways drops it silently, which would leave the next request waiting on a dead socket.
        timeout: 3 * 60_000,
      };
      agent = proxyUrl ? new HttpsTunnelAgent(proxyUrl, options) : new HttpsAgent(options);
      this.agents.set(route, agent);
    }
    return agent;
  }

  /** What stands between the node and this vault, for messages: "the HTTPS proxy http://proxy:3128", or undefined. */
  intermediaryFor(vaultUrl: string): string | undefined {
    const { hostname } = new URL(vaultUrl);
    if (this.proxy.proxyUrl === undefined || bypassesProxy(hostname, this.proxy.noProxy)) return undefined;
    // The origin only: a proxy URL can carry credentials.
    return `the HTTPS proxy ${new URL(this.proxy.proxyUrl).origin}`;
  }

  /** Closes every pooled connection (shutdown). */
  destroy(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

/**
 * https-proxy-agent with its pool keyed consistently. The agent keys its keep-alive pool by whether the target is
 * https, which it reads from `options.protocol` or, when that is absent, guesses from the current call stack. The
 * Azure SDK's HTTP client passes no protocol, so the guess differed between taking a connection (called from
 * https.request) and returning it (called from a socket event): the pool never found a returned tunnel again and every
 * request opened a new CONNECT tunnel and TLS session. Everything sent through this agent is https.
 */
class HttpsTunnelAgent extends HttpsProxyAgent<string> {
  override isSecureEndpoint(): boolean {
    return true;
  }
}
