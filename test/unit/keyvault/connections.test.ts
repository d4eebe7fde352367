import type { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { KeyVaultConnections, bypassesProxy, proxySettingsFrom, type ProxySettings } from '../../../src/keyvault/connections';

const SHOP = 'https://shop-kv.vault.azure.net/';
const BILLING = 'https://billing-kv.vault.azure.net/';
const PROXY = 'http://proxy.corp.example:3128';

/** Node's agents have `keepAlive` at run time; its type does not declare it. */
const keepsAlive = (agent: Agent): unknown => (agent as Agent & { keepAlive?: boolean }).keepAlive;

// The reading of the variables is Go's (the reference provider's); every rule is in
// test/unit/keyvault/proxy-rules.test.ts.
describe('proxySettingsFrom', () => {
  it('finds no proxy and no exemptions in an empty environment', () => {
    expect(proxySettingsFrom({})).toEqual({ proxyUrl: undefined, noProxy: [] });
  });

  it('uses HTTPS_PROXY (else https_proxy) for Key Vault, never ALL_PROXY or HTTP_PROXY, as Go does for https', () => {
    const env = { HTTPS_PROXY: 'http://https-proxy:1', ALL_PROXY: 'http://all-proxy:2', HTTP_PROXY: 'http://http-proxy:3' };
    expect(proxySettingsFrom(env).proxyUrl).toBe('http://https-proxy:1');
    expect(proxySettingsFrom({ ALL_PROXY: 'http://all-proxy:2', HTTP_PROXY: 'http://http-proxy:3' }).proxyUrl).toBeUndefined();
    expect(proxySettingsFrom({ https_proxy: 'http://lower:1' }).proxyUrl).toBe('http://lower:1');
  });

  it('gives a proxy without a scheme http://, as Go does', () => {
    expect(proxySettingsFrom({ HTTPS_PROXY: 'proxy.corp.example:3128' }).proxyUrl).toBe('http://proxy.corp.example:3128');
  });

  it('splits NO_PROXY on commas, trimming entries and dropping empty ones; NO_PROXY before no_proxy', () => {
    expect(proxySettingsFrom({ NO_PROXY: ' localhost , .svc.cluster.local,,10.0.0.1 ,' }).noProxy).toEqual(['localhost', '.svc.cluster.local', '10.0.0.1']);
    expect(proxySettingsFrom({ NO_PROXY: 'upper.example', no_proxy: 'lower.example' }).noProxy).toEqual(['upper.example']);
    expect(proxySettingsFrom({ no_proxy: '.vault.azure.net' }).noProxy).toEqual(['.vault.azure.net']);
  });
});

describe('bypassesProxy (Go rules)', () => {
  it('matches an entry without a leading dot against the host and its subdomains', () => {
    expect(bypassesProxy('shop-kv.vault.azure.net', ['vault.azure.net'])).toBe(true);
    expect(bypassesProxy('shop-kv.vault.azure.net', ['shop-kv.vault.azure.net'])).toBe(true);
    expect(bypassesProxy('evilvault.azure.net', ['vault.azure.net'])).toBe(false);
  });

  it('applies a port in an entry to the vault port (443)', () => {
    expect(bypassesProxy('shop-kv.vault.azure.net', ['vault.azure.net:443'])).toBe(true);
    expect(bypassesProxy('shop-kv.vault.azure.net', ['vault.azure.net:8443'])).toBe(false);
  });
});

describe('KeyVaultConnections', () => {
  const opened: KeyVaultConnections[] = [];
  const connections = (proxy: ProxySettings, maxSocketsPerHost = 8): KeyVaultConnections => {
    const created = new KeyVaultConnections(proxy, { maxSocketsPerHost });
    opened.push(created);
    return created;
  };
  const direct: ProxySettings = { proxyUrl: undefined, noProxy: [] };

  afterEach(() => {
    for (const c of opened.splice(0)) c.destroy();
  });

  describe('without a proxy', () => {
    it('gives a node https.Agent that keeps connections alive, with the configured sockets per host', () => {
      const agent = connections(direct, 8).agentFor(SHOP);
      expect(agent).toBeInstanceOf(HttpsAgent);
      expect(agent).not.toBeInstanceOf(HttpsProxyAgent);
      expect(keepsAlive(agent)).toBe(true);
      expect(agent.maxSockets).toBe(8);
    });

    it('shares one agent between every vault', () => {
      const pool = connections(direct);
      expect(pool.agentFor(SHOP)).toBe(pool.agentFor(BILLING));
      expect(pool.agentFor(SHOP)).toBe(pool.agentFor(`${SHOP}secrets/db-password`));
    });

    it('does not share agents between two KeyVaultConnections', () => {
      expect(connections(direct).agentFor(SHOP)).not.toBe(connections(direct).agentFor(SHOP));
    });
  });

  describe('behind a proxy', () => {
    const proxied: ProxySettings = { proxyUrl: PROXY, noProxy: [] };

    it('gives an HttpsProxyAgent for the proxy, keeping connections alive with the configured sockets per host', () => {
      const agent = connections(proxied, 5).agentFor(SHOP);
      expect(agent).toBeInstanceOf(HttpsProxyAgent);
      expect((agent as HttpsProxyAgent<string>).proxy.href).toBe(new URL(PROXY).href);
      expect(keepsAlive(agent)).toBe(true);
      expect(agent.maxSockets).toBe(5);
    });

    it('shares one proxy agent between every proxied vault', () => {
      const pool = connections(proxied);
      expect(pool.agentFor(SHOP)).toBe(pool.agentFor(BILLING));
    });

    it('treats every target as https, so returned tunnels are found again in the keep-alive pool', () => {
      const agent = connections(proxied).agentFor(SHOP) as HttpsProxyAgent<string>;
      // Without a protocol in the options the agent would guess from the call stack (see HttpsTunnelAgent).
      expect(agent.isSecureEndpoint()).toBe(true);
      expect(agent.isSecureEndpoint({ host: 'shop-kv.vault.azure.net', port: 443, secureEndpoint: false })).toBe(true);
    });

    it('gives a direct https.Agent to a vault that NO_PROXY exempts', () => {
      const pool = connections({ proxyUrl: PROXY, noProxy: ['shop-kv.vault.azure.net'] }, 6);
      const bypassed = pool.agentFor(SHOP);
      expect(bypassed).toBeInstanceOf(HttpsAgent);
      expect(bypassed).not.toBeInstanceOf(HttpsProxyAgent);
      expect(keepsAlive(bypassed)).toBe(true);
      expect(bypassed.maxSockets).toBe(6);
      expect(pool.agentFor(BILLING)).toBeInstanceOf(HttpsProxyAgent);
    });

    it('shares the direct agent between every exempted vault, apart from the proxy agent', () => {
      const pool = connections({ proxyUrl: PROXY, noProxy: ['.vault.azure.net'] });
      const exempt = pool.agentFor(SHOP);
      expect(pool.agentFor(BILLING)).toBe(exempt);
      expect(pool.agentFor('https://other.example.com/')).toBeInstanceOf(HttpsProxyAgent);
      expect(pool.agentFor('https://other.example.com/')).not.toBe(exempt);
    });
  });

  describe('an invalid proxy URL', () => {
    it.each(['not a url', 'http://user:s3cr3t-pa55@proxy.corp.example:99999'])('is refused without repeating it: %p', (proxyUrl) => {
      let error: unknown;
      try {
        new KeyVaultConnections({ proxyUrl, noProxy: [] }, { maxSocketsPerHost: 4 });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(Error);
      const message = (error as Error).message;
      expect(message).toContain('not a valid URL');
      expect(message).not.toContain(proxyUrl);
      expect(message).not.toContain('s3cr3t');
      expect((error as Error).stack).not.toContain('s3cr3t');
    });

    // Taken as a URL, proxy.corp.example:3128 has the scheme "proxy.corp.example:" and no host, and would tunnel
    // through localhost:80 (proxySettingsFrom gives such a value http://, as Go does); socks5 is not supported.
    it.each(['proxy.corp.example:3128', 'socks5://proxy.corp.example:1080'])('refuses a proxy URL that is not http:// or https://: %p', (proxyUrl) => {
      expect(() => new KeyVaultConnections({ proxyUrl, noProxy: [] }, { maxSocketsPerHost: 4 })).toThrow('not a valid URL');
    });
  });

  describe('destroy', () => {
    it('destroys every agent and starts new ones afterwards', () => {
      const pool = connections({ proxyUrl: PROXY, noProxy: ['.vault.azure.net'] });
      const agents = [pool.agentFor(SHOP), pool.agentFor('https://other.example.com/')];
      const destroyed = agents.map((agent) => jest.spyOn(agent, 'destroy'));

      pool.destroy();
      for (const spy of destroyed) expect(spy).toHaveBeenCalledTimes(1);
      expect(pool.agentFor(SHOP)).not.toBe(agents[0]);
    });
  });
});
