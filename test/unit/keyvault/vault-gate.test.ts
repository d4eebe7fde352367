import { VaultGate } from '../../../src/keyvault/vault-gate';
import { live, settle, track } from '../../support/promises';

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  jest.useRealTimers();
});

describe('VaultGate', () => {
  it.each([0, -1, 0.5, NaN])('refuses a limit of %p', (limit) => {
    expect(() => new VaultGate(limit)).toThrow('a vault gate needs a limit of at least 1');
  });

  it('admits up to `limit` requests at once', async () => {
    const gate = new VaultGate(2);
    await gate.enter(live());
    await gate.enter(live());
    expect(gate.load()).toEqual({ inFlight: 2, waiting: 0 });
  });

  it('holds a request beyond the limit until a slot is given back', async () => {
    const gate = new VaultGate(1);
    const release = await gate.enter(live());
    const second = track(gate.enter(live()));
    await settle();
    expect(second.settled).toBe(false);
    expect(gate.load()).toEqual({ inFlight: 1, waiting: 1 });

    release();
    await settle();
    expect(second.settled).toBe(true);
    expect(gate.load()).toEqual({ inFlight: 1, waiting: 0 });
  });

  it('admits waiting requests in arrival order', async () => {
    const gate = new VaultGate(1);
    const admitted: string[] = [];
    let release = await gate.enter(live());
    const waiters = ['a', 'b', 'c'].map((name) =>
      gate.enter(live()).then((leave) => {
        admitted.push(name);
        return leave;
      }),
    );
    for (const waiter of waiters) {
      release();
      release = await waiter;
    }
    expect(admitted).toEqual(['a', 'b', 'c']);
  });

  it('gives a slot back only once however often release is called', async () => {
    const gate = new VaultGate(2);
    const release = await gate.enter(live());
    await gate.enter(live());
    release();
    release();
    expect(gate.load().inFlight).toBe(1);
  });

  it('does not let a newcomer overtake a request that is already waiting', async () => {
    let now = 0;
    const gate = new VaultGate(1, () => now);
    gate.pauseFor(100);
    const first = track(gate.enter(live()));
    now = 100; // by the clock the pause is over, but its timer has not fired yet: a slot is free
    const late = track(gate.enter(live()));
    await settle();
    expect(late.settled).toBe(false);

    await jest.advanceTimersByTimeAsync(100);
    expect(first.settled).toBe(true);
    expect(late.settled).toBe(false);
  });

  it('rejects at once when the signal is already aborted, without taking a slot', async () => {
    const gate = new VaultGate(1);
    const controller = new AbortController();
    controller.abort(new Error('deadline'));
    await expect(gate.enter(controller.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(gate.load()).toEqual({ inFlight: 0, waiting: 0 });
  });

  it('rejects a waiting request when its signal aborts, with the reason as cause', async () => {
    const gate = new VaultGate(1);
    await gate.enter(live());
    const controller = new AbortController();
    const waiting = track(gate.enter(controller.signal));
    await settle();

    const reason = new Error('mount deadline');
    controller.abort(reason);
    await settle();
    expect(waiting.settled).toBe(true);
    expect(waiting.error).toMatchObject({ name: 'AbortError', cause: reason });
    expect(gate.load()).toEqual({ inFlight: 1, waiting: 0 });
  });

  it('passes the next slot over a request that gave up while waiting', async () => {
    const gate = new VaultGate(1);
    const release = await gate.enter(live());
    const controller = new AbortController();
    const quitter = track(gate.enter(controller.signal));
    const patient = track(gate.enter(live()));
    controller.abort();
    release();
    await settle();
    expect(quitter.error).toMatchObject({ name: 'AbortError' });
    expect(patient.settled).toBe(true);
    expect(gate.load()).toEqual({ inFlight: 1, waiting: 0 });
  });

  it('keeps the slot of an admitted request whose signal aborts afterwards', async () => {
    const gate = new VaultGate(1);
    const controller = new AbortController();
    const release = await gate.enter(controller.signal);
    controller.abort();
    expect(gate.load().inFlight).toBe(1);
    release();
    expect(gate.load().inFlight).toBe(0);
  });

  describe('pauseFor', () => {
    it('holds new requests back until the pause ends, even with free slots', async () => {
      const gate = new VaultGate(4);
      gate.pauseFor(1000);
      const held = track(gate.enter(live()));

      await jest.advanceTimersByTimeAsync(999);
      expect(held.settled).toBe(false);
      expect(gate.load()).toEqual({ inFlight: 0, waiting: 1 });

      await jest.advanceTimersByTimeAsync(1);
      expect(held.settled).toBe(true);
      expect(gate.load()).toEqual({ inFlight: 1, waiting: 0 });
    });

    it('lets requests already in flight finish, without admitting waiters before the pause ends', async () => {
      const gate = new VaultGate(1);
      const release = await gate.enter(live());
      gate.pauseFor(500);
      const waiting = track(gate.enter(live()));

      release();
      await settle();
      expect(gate.load()).toEqual({ inFlight: 0, waiting: 1 });
      expect(waiting.settled).toBe(false);

      await jest.advanceTimersByTimeAsync(500);
      expect(waiting.settled).toBe(true);
    });

    it('admits no more than the limit when the pause ends', async () => {
      const gate = new VaultGate(2);
      gate.pauseFor(300);
      const waiters = [1, 2, 3].map(() => track(gate.enter(live())));
      await jest.advanceTimersByTimeAsync(300);
      expect(waiters.map((w) => w.settled)).toEqual([true, true, false]);
      expect(gate.load()).toEqual({ inFlight: 2, waiting: 1 });
    });

    it('keeps a longer pause when a shorter one is asked for afterwards', async () => {
      const gate = new VaultGate(1);
      gate.pauseFor(1000);
      gate.pauseFor(300);
      const held = track(gate.enter(live()));

      await jest.advanceTimersByTimeAsync(999);
      expect(held.settled).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      expect(held.settled).toBe(true);
    });

    it('extends the pause when a longer one is asked for afterwards', async () => {
      const gate = new VaultGate(1);
      gate.pauseFor(300);
      await jest.advanceTimersByTimeAsync(100);
      gate.pauseFor(1000); // until t=1100
      const held = track(gate.enter(live()));

      await jest.advanceTimersByTimeAsync(999);
      expect(held.settled).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      expect(held.settled).toBe(true);
    });

    it('does not hold requests once the pause is over', async () => {
      const gate = new VaultGate(1);
      gate.pauseFor(200);
      await jest.advanceTimersByTimeAsync(200);
      const next = track(gate.enter(live()));
      await settle();
      expect(next.settled).toBe(true);
    });

    it('lets a request give up while the gate is paused', async () => {
      const gate = new VaultGate(1);
      gate.pauseFor(1000);
      const controller = new AbortController();
      const held = track(gate.enter(controller.signal));
      await jest.advanceTimersByTimeAsync(10);
      controller.abort();
      await settle();
      expect(held.error).toMatchObject({ name: 'AbortError' });
      expect(gate.load()).toEqual({ inFlight: 0, waiting: 0 });
    });

    it('waits out the rest of the pause when its timer fires early by the clock', async () => {
      let skewMs = 0;
      const gate = new VaultGate(1, () => Date.now() + skewMs);
      gate.pauseFor(1000);
      const held = track(gate.enter(live()));
      skewMs = -5; // the clock now reads 5 ms behind the timers

      await jest.advanceTimersByTimeAsync(1000);
      expect(held.settled).toBe(false);
      await jest.advanceTimersByTimeAsync(5);
      expect(held.settled).toBe(true);
    });

    it('ends the pause by the injected clock, not by the timer alone', async () => {
      let now = 50_000;
      const gate = new VaultGate(1, () => now);
      gate.pauseFor(1000);
      const held = track(gate.enter(live()));

      await jest.advanceTimersByTimeAsync(1000); // the timer fired, but the clock has not moved
      expect(held.settled).toBe(false);
      now += 1000;
      await jest.advanceTimersByTimeAsync(1000);
      expect(held.settled).toBe(true);
    });

    // Node's timers fire after 1 ms for a delay over 2^31-1 ms (~24.8 days): a month's pause must not re-arm every ms.
    it('holds requests through a pause longer than the longest timer, without re-arming every millisecond', async () => {
      const gate = new VaultGate(1);
      const setTimeoutSpy = jest.spyOn(global, 'setTimeout');
      gate.pauseFor(30 * 24 * 60 * 60_000); // 30 days
      const held = track(gate.enter(live()));

      await jest.advanceTimersByTimeAsync(1000);
      expect(held.settled).toBe(false);
      expect(setTimeoutSpy.mock.calls.length).toBeLessThanOrEqual(2);
      setTimeoutSpy.mockRestore();
    });

    it('does not keep the process alive with its timer', () => {
      const setTimeoutSpy = jest.spyOn(global, 'setTimeout');
      new VaultGate(1).pauseFor(60_000);
      const timer = setTimeoutSpy.mock.results[0]!.value as NodeJS.Timeout;
      expect(timer.hasRef()).toBe(false);
      setTimeoutSpy.mockRestore();
    });
  });
});
