import type { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { KeyVaultConnections, bypassesProxy, proxySettingsFrom, type ProxySettings } from '../../../src/keyvault/connections';

const SHOP = 'https://shop-kv.vault.azure.net/';
const BILLING = 'https://billing-kv.vault.azure.net/';
const PROXY = 'http://proxy.corp.example:3128';

/** Node's agents have `keepAlive` at run time; its type does not declare it. */
const keepsAlive = (agent: Agent): unknown => (agent as Agent & { keepAlive?: boolean }).keepAlive;

describe('proxySettingsFrom', () => {
  it('finds no proxy and no exemptions in an empty environment', () => {
    expect(proxySettingsFrom({})).toEqual({ proxyUrl: undefined, noProxy: [] });
  });

  it('prefers HTTPS_PROXY over ALL_PROXY and HTTP_PROXY', () => {
    const env = { HTTPS_PROXY: 'http://https-proxy:1', ALL_PROXY: 'http://all-proxy:2', HTTP_PROXY: 'http://http-proxy:3' };
    expect(proxySettingsFrom(env).proxyUrl).toBe('http://https-proxy:1');
  });

  it('uses ALL_PROXY before HTTP_PROXY', () => {
    expect(proxySettingsFrom({ ALL_PROXY: 'http://all-proxy:2', HTTP_PROXY: 'http://http-proxy:3' }).proxyUrl).toBe('http://all-proxy:2');
  });

  it('uses HTTP_PROXY when it is the only one set', () => {
    expect(proxySettingsFrom({ HTTP_PROXY: 'http://http-proxy:3' }).proxyUrl).toBe('http://http-proxy:3');
  });

  it('prefers the upper-case variable over the lower-case one', () => {
    expect(proxySettingsFrom({ HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:1' }).proxyUrl).toBe('http://upper:1');
  });

  it.each([
    ['https_proxy', 'http://lower-https:1'],
    ['all_proxy', 'http://lower-all:2'],
    ['http_proxy', 'http://lower-http:3'],
  ])('reads %s when its upper-case form is not set', (name, value) => {
    expect(proxySettingsFrom({ [name]: value }).proxyUrl).toBe(value);
  });

  it('ranks the variable before its case (lower-case https_proxy beats HTTP_PROXY)', () => {
    expect(proxySettingsFrom({ https_proxy: 'http://lower-https:1', HTTP_PROXY: 'http://upper-http:3' }).proxyUrl).toBe(
      'http://lower-https:1',
    );
  });

  it('treats an empty variable as not set', () => {
    expect(proxySettingsFrom({ HTTPS_PROXY: '', https_proxy: 'http://lower:1' }).proxyUrl).toBe('http://lower:1');
    expect(proxySettingsFrom({ HTTPS_PROXY: '', HTTP_PROXY: 'http://http-proxy:3' }).proxyUrl).toBe('http://http-proxy:3');
    expect(proxySettingsFrom({ HTTPS_PROXY: '' }).proxyUrl).toBeUndefined();
  });

  it('splits NO_PROXY on commas, trimming entries and dropping empty ones', () => {
    const env = { NO_PROXY: ' localhost , .svc.cluster.local,,10.0.0.1 ,' };
    expect(proxySettingsFrom(env).noProxy).toEqual(['localhost', '.svc.cluster.local', '10.0.0.1']);
  });

  it('reads no_proxy when NO_PROXY is not set, and prefers NO_PROXY when both are', () => {
    expect(proxySettingsFrom({ no_proxy: '.vault.azure.net' }).noProxy).toEqual(['.vault.azure.net']);
    expect(proxySettingsFrom({ NO_PROXY: 'upper.example', no_proxy: 'lower.example' }).noProxy).toEqual(['upper.example']);
  });
});

describe('bypassesProxy', () => {
  it('bypasses nothing with an empty NO_PROXY', () => {
    expect(bypassesProxy('shop-kv.vault.azure.net', [])).toBe(false);
  });

  it('matches an entry without a leading dot against the exact host only', () => {
    expect(bypassesProxy('shop-kv.vault.azure.net', ['shop-kv.vault.azure.net'])).toBe(true);
    expect(bypassesProxy('billing-kv.vault.azure.net', ['shop-kv.vault.azure.net'])).toBe(false);
    expect(bypassesProxy('shop-kv.vault.azure.net', ['vault.azure.net'])).toBe(false);
  });

  it('matches an entry with a leading dot against its subdomains', () => {
    expect(bypassesProxy('shop-kv.vault.azure.net', ['.vault.azure.net'])).toBe(true);
    expect(bypassesProxy('deep.shop-kv.vault.azure.net', ['.vault.azure.net'])).toBe(true);
  });

  it('matches an entry with a leading dot against the bare domain itself', () => {
    expect(bypassesProxy('vault.azure.net', ['.vault.azure.net'])).toBe(true);
  });

  it('does not match a host that merely ends with the same letters', () => {
    expect(bypassesProxy('evilvault.azure.net', ['.vault.azure.net'])).toBe(false);
    expect(bypassesProxy('evilvault.azure.net', ['vault.azure.net'])).toBe(false);
  });

  it('ignores case in both host and entry', () => {
    expect(bypassesProxy('Shop-KV.Vault.Azure.NET', ['.vault.azure.net'])).toBe(true);
    expect(bypassesProxy('shop-kv.vault.azure.net', ['SHOP-KV.VAULT.AZURE.NET'])).toBe(true);
    expect(bypassesProxy('vault.azure.net', ['.VAULT.azure.net'])).toBe(true);
  });

  it('bypasses when any one entry matches', () => {
    expect(bypassesProxy('shop-kv.vault.azure.net', ['localhost', '.svc.cluster.local', '.vault.azure.net'])).toBe(true);
    expect(bypassesProxy('shop-kv.vault.azure.net', ['localhost', '.svc.cluster.local'])).toBe(false);
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

    // The curl-style HTTPS_PROXY=proxy.corp.example:3128 parses as a URL with the scheme "proxy.corp.example:" and
    // no host; accepted, it would send every tunnel to localhost:80.
    it('refuses a proxy URL that is not http:// or https:// (it would tunnel through localhost:80)', () => {
      expect(() => new KeyVaultConnections({ proxyUrl: 'proxy.corp.example:3128', noProxy: [] }, { maxSocketsPerHost: 4 })).toThrow(
        'not a valid URL',
      );
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
