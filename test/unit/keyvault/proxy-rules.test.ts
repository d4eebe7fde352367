/**
 * Every rule of Go's proxy selection (golang.org/x/net/http/httpproxy, what the reference provider's net/http uses),
 * one case per rule. The expectations are Go's answers: each row was checked against Go's own implementation with the
 * Go toolchain (see go-parity below, which runs when Go is installed).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpsProxyFrom, noProxyFrom, parseNoProxy } from '../../../src/keyvault/proxy-rules';

/** [NO_PROXY, host, port, bypassed?, the rule] */
const CASES: Array<[string, string, number, boolean, string]> = [
  ['', 'kv.vault.azure.net', 443, false, 'empty NO_PROXY: everything through the proxy'],
  ['*', 'kv.vault.azure.net', 443, true, '* alone: nothing through the proxy'],
  ['*', '10.1.2.3', 443, true, '* alone covers addresses too'],
  ['foo.com,*', 'kv.vault.azure.net', 443, true, '* anywhere in the list'],
  ['*.vault.azure.net', 'kv.vault.azure.net', 443, true, '*.domain matches subdomains'],
  ['*.vault.azure.net', 'vault.azure.net', 443, false, '*.domain does not match the domain itself (Go reads it as .domain)'],
  ['vault.azure.net', 'kv.vault.azure.net', 443, true, 'a bare domain matches its subdomains'],
  ['vault.azure.net', 'deep.kv.vault.azure.net', 443, true, 'a bare domain matches deeper subdomains'],
  ['vault.azure.net', 'vault.azure.net', 443, true, 'a bare domain matches itself'],
  ['.vault.azure.net', 'kv.vault.azure.net', 443, true, '.domain matches subdomains'],
  ['.vault.azure.net', 'vault.azure.net', 443, false, '.domain does not match the domain itself'],
  ['vault.azure.net', 'evilvault.azure.net', 443, false, 'a suffix of letters is not a subdomain'],
  ['VAULT.Azure.NET', 'KV.vault.azure.net', 443, true, 'case-insensitive'],
  ['  vault.azure.net  , ,', 'kv.vault.azure.net', 443, true, 'entries trimmed, empty ones skipped'],
  ['vault.azure.net:443', 'kv.vault.azure.net', 443, true, 'a domain with a port matches that port'],
  ['vault.azure.net:8443', 'kv.vault.azure.net', 443, false, 'a domain with another port does not match'],
  ['10.0.0.0/8', '10.1.2.3', 443, true, 'IPv4 CIDR contains the address'],
  ['10.0.0.0/8', '11.1.2.3', 443, false, 'IPv4 CIDR does not contain it'],
  ['10.1.2.3/8', '10.200.0.1', 443, true, 'CIDR with host bits set: the network'],
  ['fd00::/8', 'fd12::1', 443, true, 'IPv6 CIDR'],
  ['fd00::/8', 'fe80::1', 443, false, 'IPv6 CIDR, outside'],
  ['10.1.2.3', '10.1.2.3', 443, true, 'an IPv4 address matches itself'],
  ['10.1.2.3', '10.1.2.4', 443, false, 'and no other'],
  ['10.1.2.3:443', '10.1.2.3', 443, true, 'an address with the port'],
  ['10.1.2.3:8443', '10.1.2.3', 443, false, 'an address with another port'],
  ['fd00::1', 'fd00:0:0::1', 443, true, 'an IPv6 address, written differently'],
  ['[fd00::1]:443', 'fd00::1', 443, true, '[IPv6]:port'],
  ['10.1.2.3', '::ffff:10.1.2.3', 443, true, 'IPv4 equals its IPv4-mapped IPv6 form'],
  ['10.0.0.0/8', 'ten.example', 443, false, 'address entries never match names'],
  ['10.1.2.3', 'ten.example', 443, false, 'address entries never match names (exact)'],
  ['example', '10.1.2.3', 443, false, 'name entries never match addresses'],
  ['', 'localhost', 443, true, 'localhost is never proxied'],
  ['', '127.0.0.1', 443, true, 'loopback IPv4 is never proxied'],
  ['', '127.9.9.9', 443, true, 'all of 127.0.0.0/8'],
  ['', '::1', 443, true, 'loopback IPv6 is never proxied'],
  [':443', 'kv.vault.azure.net', 443, false, 'an entry with no host is ignored'],
  ['[fd00::1]', 'fd00::1', 443, false, 'a bracketed address without a port is not an address entry in Go'],
];

describe('NO_PROXY, by Go rules', () => {
  it.each(CASES)('NO_PROXY=%p, host %p:%p → bypassed %p (%s)', (noProxy, host, port, bypassed) => {
    expect(parseNoProxy(noProxy).bypasses(host, port)).toBe(bypassed);
  });

  it('accepts the bracketed form of a request host', () => {
    expect(parseNoProxy('fd00::/8').bypasses('[fd00::1]', 443)).toBe(true);
  });
});

describe('the variables, as Go reads them for https', () => {
  it('HTTPS_PROXY, else https_proxy; empty counts as unset', () => {
    expect(httpsProxyFrom({ HTTPS_PROXY: 'http://a:1', https_proxy: 'http://b:1' })).toBe('http://a:1');
    expect(httpsProxyFrom({ HTTPS_PROXY: '', https_proxy: 'http://b:1' })).toBe('http://b:1');
    expect(httpsProxyFrom({ HTTPS_PROXY: '' })).toBeUndefined();
  });

  it('never ALL_PROXY or HTTP_PROXY', () => {
    expect(httpsProxyFrom({ ALL_PROXY: 'http://a:1', HTTP_PROXY: 'http://b:1', http_proxy: 'http://c:1' })).toBeUndefined();
  });

  it('a value without a scheme gets http://', () => {
    expect(httpsProxyFrom({ HTTPS_PROXY: 'proxy.corp:3128' })).toBe('http://proxy.corp:3128');
    expect(httpsProxyFrom({ HTTPS_PROXY: '10.0.0.5:3128' })).toBe('http://10.0.0.5:3128');
    expect(httpsProxyFrom({ HTTPS_PROXY: 'https://proxy.corp:443' })).toBe('https://proxy.corp:443');
  });

  it('NO_PROXY, else no_proxy', () => {
    expect(noProxyFrom({ NO_PROXY: 'a', no_proxy: 'b' })).toBe('a');
    expect(noProxyFrom({ NO_PROXY: '', no_proxy: 'b' })).toBe('b');
    expect(noProxyFrom({})).toBe('');
  });
});

// The same table, answered by Go's own implementation, when a Go toolchain is installed (it is on the CI machines).
const GO = ['/usr/local/go/bin/go'].find((p) => existsSync(p));
(GO ? describe : describe.skip)('go-parity: Go gives the same answers', () => {
  it('for every case of the table', () => {
    const dir = mkdtempSync(join(tmpdir(), 'go-proxy-'));
    try {
      writeFileSync(join(dir, 'go.mod'), 'module parity\n\ngo 1.22\n');
      // Only the standard library: net/http reads the rules through its vendored httpproxy.
      writeFileSync(
        join(dir, 'main.go'),
        [
          'package main',
          'import ("encoding/json"; "fmt"; "net"; "net/http"; "net/url"; "os"; "strconv")',
          'func main() {',
          '  var cases [][]any',
          '  _ = json.NewDecoder(os.Stdin).Decode(&cases)',
          '  for _, c := range cases {',
          '    os.Setenv("HTTPS_PROXY", "http://proxy.invalid:3128"); os.Setenv("NO_PROXY", c[0].(string))',
          '    u := &url.URL{Scheme: "https", Host: net.JoinHostPort(c[1].(string), strconv.Itoa(int(c[2].(float64))))}',
          '    p, _ := http.ProxyFromEnvironment(&http.Request{URL: u})',
          '    fmt.Println(p == nil)',
          '  }',
          '}',
          '',
        ].join('\n'),
      );
      execFileSync(GO!, ['build', '-o', 'parity', '.'], { cwd: dir, env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' } });
      // ProxyFromEnvironment reads the environment once per process: one process per case.
      for (const c of CASES) {
        const out = execFileSync(join(dir, 'parity'), { input: JSON.stringify([c]), env: { PATH: process.env['PATH'] ?? '' } }).toString().trim();
        expect(`${c[4]}: ${out}`).toBe(`${c[4]}: ${String(c[3])}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
