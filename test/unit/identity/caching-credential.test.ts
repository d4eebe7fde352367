import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { CachingCredential, STALE_FLIGHT_MS } from '../../../src/identity/caching-credential';
import { TokenRequestError } from '../../../src/identity/token-errors';
import type { IdentityMode, Outcome, ProviderMetrics } from '../../../src/observability/metrics';
import { noopMetrics } from '../../../src/observability/metrics';

/** An inner credential whose answers the test controls, counting calls. */
class FakeCredential implements TokenCredential {
  calls: Array<{ scopes: string | string[]; options: GetTokenOptions | undefined }> = [];
  pending: Array<{ resolve: (t: AccessToken) => void; reject: (e: unknown) => void }> = [];
  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.calls.push({ scopes, options });
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }
  answer(token: string, expiresOnTimestamp: number): void {
    this.pending.shift()!.resolve({ token, expiresOnTimestamp, refreshAfterTimestamp: 1, tokenType: 'Bearer' });
  }
}

function recordingMetrics(): ProviderMetrics & { tokens: Array<[IdentityMode, Outcome]> } {
  const tokens: Array<[IdentityMode, Outcome]> = [];
  return { ...noopMetrics, tokens, countTokenRequest: (mode, outcome) => void tokens.push([mode, outcome]) };
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));
const SCOPE = 'https://vault.azure.net/.default';

describe('CachingCredential', () => {
  let now = 1_000_000;
  const clock = (): number => now;

  it('asks once for concurrent callers and reuses the token until five minutes before it expires', async () => {
    const inner = new FakeCredential();
    const metrics = recordingMetrics();
    const credential = new CachingCredential(inner, { mode: 'servicePrincipal', metrics, now: clock });
    const waiting = Promise.all(Array.from({ length: 10 }, () => credential.getToken(SCOPE)));
    await flush();
    expect(inner.calls).toHaveLength(1);
    inner.answer('t1', now + 3600_000);
    const tokens = await waiting;
    expect(new Set(tokens.map((t) => t!.token))).toEqual(new Set(['t1']));
    // refreshAfterTimestamp is not passed on (the Key Vault clients would ask again on every request after it).
    expect(tokens[0]).toEqual({ token: 't1', expiresOnTimestamp: now + 3600_000, tokenType: 'Bearer' });

    now += 3600_000 - 5 * 60_000 - 1;
    expect((await credential.getToken(SCOPE))!.token).toBe('t1');
    expect(inner.calls).toHaveLength(1);
    now += 2;
    const refreshed = credential.getToken(SCOPE);
    await flush();
    expect(inner.calls).toHaveLength(2);
    inner.answer('t2', now + 3600_000);
    expect((await refreshed)!.token).toBe('t2');
    expect(metrics.tokens).toEqual([
      ['servicePrincipal', 'success'],
      ['servicePrincipal', 'success'],
    ]);
  });

  it('keeps tokens apart by scope, tenant and CAE, and sends claims challenges to the service every time', async () => {
    const inner = new FakeCredential();
    const credential = new CachingCredential(inner, { mode: 'workloadIdentity', metrics: noopMetrics, now: clock });
    const ask = async (scope: string, options?: GetTokenOptions): Promise<string> => {
      const p = credential.getToken(scope, options);
      await flush();
      if (inner.pending.length > 0) inner.answer(`tok-${inner.calls.length}`, now + 3600_000);
      return (await p)!.token;
    };
    const a = await ask(SCOPE);
    expect(await ask(SCOPE)).toBe(a);
    expect(await ask('https://vault.azure.cn/.default')).not.toBe(a);
    expect(await ask(SCOPE, { tenantId: 'other' })).not.toBe(a);
    expect(await ask(SCOPE, { enableCae: true })).not.toBe(a);
    const calls = inner.calls.length;
    await ask(SCOPE, { claims: '{"access_token":{}}' });
    await ask(SCOPE, { claims: '{"access_token":{}}' });
    expect(inner.calls.length).toBe(calls + 2);
  });

  it('does not cache failures, translates them, and counts their outcome', async () => {
    const inner = new FakeCredential();
    const metrics = recordingMetrics();
    const translated = new TokenRequestError('Unauthenticated', 'the identity', 'AADSTS7000215: Invalid client secret', 'fix it', 'unauthenticated');
    const credential = new CachingCredential(inner, { mode: 'servicePrincipal', metrics, translate: () => translated, now: clock });
    const first = credential.getToken(SCOPE);
    await flush();
    inner.pending.shift()!.reject(new Error('raw'));
    await expect(first).rejects.toBe(translated);
    const second = credential.getToken(SCOPE);
    await flush();
    expect(inner.calls).toHaveLength(2);
    inner.answer('ok', now + 3600_000);
    expect((await second)!.token).toBe('ok');
    expect(metrics.tokens).toEqual([
      ['servicePrincipal', 'unauthenticated'],
      ['servicePrincipal', 'success'],
    ]);
  });

  it("lets one caller give up on its own signal while the shared request goes on for the others", async () => {
    const inner = new FakeCredential();
    const credential = new CachingCredential(inner, { mode: 'vmManagedIdentity', metrics: noopMetrics, now: clock });
    const controller = new AbortController();
    const impatient = credential.getToken(SCOPE, { abortSignal: controller.signal });
    const patient = credential.getToken(SCOPE);
    await flush();
    // The inner request does not carry the first caller's signal.
    expect(inner.calls[0]!.options?.abortSignal).not.toBe(controller.signal);
    controller.abort();
    await expect(impatient).rejects.toMatchObject({ name: 'AbortError' });
    inner.answer('shared', now + 3600_000);
    expect((await patient)!.token).toBe('shared');
  });

  it("rejects with the mount's own reason when its signal carries one", async () => {
    const inner = new FakeCredential();
    const credential = new CachingCredential(inner, { mode: 'vmManagedIdentity', metrics: noopMetrics, now: clock });
    const reason = new TokenRequestError('DeadlineExceeded', 'x', 'deadline', '', 'cancelled');
    await expect(credential.getToken(SCOPE, { abortSignal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  describe('issue 14: bounded flights, rejected tokens, re-checks and refused identities', () => {
    it('a caller arriving while the shared request is older than STALE_FLIGHT_MS starts a fresh one', async () => {
      const inner = new FakeCredential();
      const credential = new CachingCredential(inner, { mode: 'vmManagedIdentity', metrics: noopMetrics, now: clock });
      const stuck = credential.getToken(SCOPE);
      await flush();
      now += STALE_FLIGHT_MS - 1;
      const joined = credential.getToken(SCOPE);
      await flush();
      expect(inner.calls).toHaveLength(1);
      now += 2;
      const fresh = credential.getToken(SCOPE);
      await flush();
      expect(inner.calls).toHaveLength(2);
      inner.pending[1]!.resolve({ token: 'fresh', expiresOnTimestamp: now + 3600_000 });
      expect((await fresh)!.token).toBe('fresh');
      inner.answer('late', now + 3600_000);
      expect((await stuck)!.token).toBe('late');
      expect((await joined)!.token).toBe('late');
    });

    it('invalidate() drops the cached token: the next caller asks the endpoint again', async () => {
      const inner = new FakeCredential();
      const credential = new CachingCredential(inner, { mode: 'vmManagedIdentity', metrics: noopMetrics, now: clock });
      const first = credential.getToken(SCOPE);
      await flush();
      inner.answer('t1', now + 3600_000);
      await first;
      credential.invalidate();
      const second = credential.getToken(SCOPE);
      await flush();
      expect(inner.calls).toHaveLength(2);
      inner.answer('t2', now + 3600_000);
      expect((await second)!.token).toBe('t2');
    });

    it('with maxTokenAgeMs, re-asks after that long; a refusal ends the token, an outage keeps it serving', async () => {
      const inner = new FakeCredential();
      const refused = jest.fn();
      const credential = new CachingCredential(inner, { mode: 'vmManagedIdentity', metrics: noopMetrics, maxTokenAgeMs: 5 * 60_000, onRefused: refused, now: clock });
      const first = credential.getToken(SCOPE);
      await flush();
      inner.answer('t1', now + 24 * 3600_000);
      await first;
      now += 5 * 60_000 - 1;
      expect((await credential.getToken(SCOPE))!.token).toBe('t1');
      expect(inner.calls).toHaveLength(1);
      now += 1;
      const outage = credential.getToken(SCOPE);
      await flush();
      expect(inner.calls).toHaveLength(2);
      inner.pending.shift()!.reject(new TokenRequestError('Unavailable', 'me', 'IMDS did not answer', 'retry', 'network'));
      expect((await outage)!.token).toBe('t1');
      // The identity was removed from the node pool: IMDS refuses it, the cached token is no longer served.
      const removed = credential.getToken(SCOPE);
      await flush();
      inner.pending.shift()!.reject(new TokenRequestError('Unauthenticated', 'me', 'Identity not found', 'assign it', 'not_found'));
      await expect(removed).rejects.toThrow('Identity not found');
      expect(refused).toHaveBeenCalledTimes(1);
      const after = credential.getToken(SCOPE);
      await flush();
      expect(inner.calls).toHaveLength(4);
      inner.answer('t2', now + 3600_000);
      expect((await after)!.token).toBe('t2');
    });
  });
});
