import { RateLimitedGate } from '../../../src/keyvault/rate-limited-gate';

describe('RateLimitedGate', () => {
  it('sends at most a second of burst, then the rate; the in-flight bound still holds', async () => {
    const gate = new RateLimitedGate(64, 10);
    const signal = new AbortController().signal;
    const started = Date.now();
    const admitted: number[] = [];
    await Promise.all(
      Array.from({ length: 15 }, async () => {
        const leave = await gate.enter(signal);
        admitted.push(Date.now() - started);
        leave();
      }),
    );
    // At most 10 at once (the burst), the others at 10 a second: the last one at least about 400 ms later (a lower
    // bound: a slow machine only delays it further).
    expect(admitted.filter((t) => t < 50).length).toBeLessThanOrEqual(10);
    expect(Math.max(...admitted)).toBeGreaterThanOrEqual(380);
  });

  it('gives the slot back when a mount gives up waiting for a token', async () => {
    const gate = new RateLimitedGate(1, 1);
    const first = await gate.enter(new AbortController().signal);
    first();
    const controller = new AbortController();
    const waiting = gate.enter(controller.signal);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    expect(gate.load().inFlight).toBe(0);
  });
});
