import { ProviderError } from '../../../src/errors';
import { SharedReads, type SharedRead } from '../../../src/keyvault/shared-reads';
import { live, settle, track } from '../../support/promises';

/** A promise with its resolve and reject, for a read the test finishes by hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A read the test controls: each `create` starts a new run, recorded with the signal it got. */
function controlledRead<T>(whyWaiting?: () => Error | undefined) {
  const runs: Array<{ signal: AbortSignal; result: ReturnType<typeof deferred<T>> }> = [];
  const create = jest.fn((): SharedRead<T> => ({
    run: (signal) => {
      const result = deferred<T>();
      runs.push({ signal, result });
      return result.promise;
    },
    whyWaiting,
  }));
  return { create, runs };
}

describe('SharedReads', () => {
  it('shares one run between concurrent reads of the same key', async () => {
    const reads = new SharedReads();
    const { create, runs } = controlledRead<string>();
    const first = reads.read('get/secret/db/', live(), create);
    const second = reads.read('get/secret/db/', live(), create);

    expect(create).toHaveBeenCalledTimes(1);
    expect(reads.size).toBe(1);
    runs[0]!.result.resolve('s3cret');
    await expect(Promise.all([first, second])).resolves.toEqual(['s3cret', 's3cret']);
  });

  it('tells the caller whether it joined a read already in flight', () => {
    const reads = new SharedReads();
    const { create } = controlledRead<string>();
    const onShared = jest.fn();
    void reads.read('k', live(), create, onShared);
    void reads.read('k', live(), create, onShared);
    expect(onShared.mock.calls).toEqual([[false], [true]]);
  });

  it('does not share runs between different keys', async () => {
    const reads = new SharedReads();
    const { create, runs } = controlledRead<string>();
    const a = reads.read('get/secret/a/', live(), create);
    const b = reads.read('get/secret/b/', live(), create);

    expect(create).toHaveBeenCalledTimes(2);
    expect(reads.size).toBe(2);
    runs[0]!.result.resolve('A');
    runs[1]!.result.resolve('B');
    await expect(a).resolves.toBe('A');
    await expect(b).resolves.toBe('B');
  });

  it('starts a fresh run for a read after the previous one finished (nothing is cached)', async () => {
    const reads = new SharedReads();
    const { create, runs } = controlledRead<string>();
    const before = reads.read('k', live(), create);
    runs[0]!.result.resolve('version 1');
    await expect(before).resolves.toBe('version 1');
    expect(reads.size).toBe(0);

    const after = reads.read('k', live(), create);
    expect(create).toHaveBeenCalledTimes(2);
    runs[1]!.result.resolve('version 2');
    await expect(after).resolves.toBe('version 2');
  });

  it('rejects every waiter with the error of a failed run', async () => {
    const reads = new SharedReads();
    const { create, runs } = controlledRead<string>();
    const waiters = [1, 2, 3].map(() => reads.read('k', live(), create));
    const failure = new ProviderError('NotFound', 'secret "db" was not found');
    runs[0]!.result.reject(failure);
    for (const waiter of waiters) await expect(waiter).rejects.toBe(failure);
  });

  it('starts a fresh run for a read after the previous one failed', async () => {
    const reads = new SharedReads();
    const { create, runs } = controlledRead<string>();
    const before = reads.read('k', live(), create);
    runs[0]!.result.reject(new Error('503'));
    await expect(before).rejects.toThrow('503');
    expect(reads.size).toBe(0);

    const after = reads.read('k', live(), create);
    runs[1]!.result.resolve('value');
    await expect(after).resolves.toBe('value');
  });

  it('rejects at once, without starting a run, when the signal is already aborted', async () => {
    const reads = new SharedReads();
    const { create } = controlledRead<string>();
    const controller = new AbortController();
    controller.abort();
    await expect(reads.read('k', controller.signal, create)).rejects.toMatchObject({ name: 'AbortError' });
    expect(create).not.toHaveBeenCalled();
    expect(reads.size).toBe(0);
  });

  describe('a waiter that gives up', () => {
    it('is rejected at once with the error whyWaiting gives', async () => {
      const reads = new SharedReads();
      const why = new ProviderError('Cancelled', 'still retrying after 4 attempts: throttled');
      const { create } = controlledRead<string>(() => why);
      const controller = new AbortController();
      const waiter = track(reads.read('k', controller.signal, create));
      void reads.read('k', live(), create);

      controller.abort(new Error('deadline'));
      await settle();
      expect(waiter.error).toBe(why);
    });

    it('is rejected with the abort error when whyWaiting has nothing to say', async () => {
      const reads = new SharedReads();
      const { create } = controlledRead<string>(() => undefined);
      const controller = new AbortController();
      const waiter = track(reads.read('k', controller.signal, create));
      const reason = new Error('driver cancelled');
      controller.abort(reason);
      await settle();
      expect(waiter.error).toMatchObject({ name: 'AbortError', cause: reason });
    });

    it('is rejected with the abort error when the read has no whyWaiting', async () => {
      const reads = new SharedReads();
      const { create } = controlledRead<string>();
      const controller = new AbortController();
      const waiter = track(reads.read('k', controller.signal, create));
      const deadline = new ProviderError('DeadlineExceeded', 'the mount took too long');
      controller.abort(deadline);
      await settle();
      expect(waiter.error).toBe(deadline);
    });

    it('gets the whyWaiting of the read it joined', async () => {
      const reads = new SharedReads();
      const why = new Error('waiting for a slot');
      const { create } = controlledRead<string>(() => why);
      void reads.read('k', live(), create);
      const controller = new AbortController();
      const joiner = track(reads.read('k', controller.signal, () => ({ run: async () => 'unused' })));
      controller.abort();
      await settle();
      expect(joiner.error).toBe(why);
    });

    it('does not stop the run while others still wait, and they get its result', async () => {
      const reads = new SharedReads();
      const { create, runs } = controlledRead<string>();
      const controller = new AbortController();
      const quitter = track(reads.read('k', controller.signal, create));
      const patient = reads.read('k', live(), create);

      controller.abort();
      await settle();
      expect(quitter.error).toMatchObject({ name: 'AbortError' });
      expect(runs[0]!.signal.aborted).toBe(false);
      expect(reads.size).toBe(1);

      runs[0]!.result.resolve('value');
      await expect(patient).resolves.toBe('value');
      expect(quitter.error).toMatchObject({ name: 'AbortError' });
    });

    it('is not affected when its signal aborts after the read finished', async () => {
      const reads = new SharedReads();
      const { create, runs } = controlledRead<string>(() => new Error('should not be asked'));
      const controller = new AbortController();
      const waiter = reads.read('k', controller.signal, create);
      runs[0]!.result.resolve('value');
      await expect(waiter).resolves.toBe('value');
      controller.abort();
      expect(runs[0]!.signal.aborted).toBe(false);
    });
  });

  describe('when the last waiter gives up', () => {
    it("aborts the run's signal with the last waiter's reason", async () => {
      const reads = new SharedReads();
      const { create, runs } = controlledRead<string>();
      const a = new AbortController();
      const b = new AbortController();
      track(reads.read('k', a.signal, create));
      track(reads.read('k', b.signal, create));

      a.abort(new Error('first deadline'));
      expect(runs[0]!.signal.aborted).toBe(false);
      const reason = new Error('second deadline');
      b.abort(reason);
      expect(runs[0]!.signal.aborted).toBe(true);
      expect(runs[0]!.signal.reason).toBe(reason);
    });

    it('frees the key, so the next read starts a fresh run', async () => {
      const reads = new SharedReads();
      const { create, runs } = controlledRead<string>();
      const controller = new AbortController();
      track(reads.read('k', controller.signal, create));
      controller.abort();
      expect(reads.size).toBe(0);

      const next = reads.read('k', live(), create);
      expect(create).toHaveBeenCalledTimes(2);
      expect(runs[1]!.signal.aborted).toBe(false);
      runs[1]!.result.resolve('fresh');
      await expect(next).resolves.toBe('fresh');
    });

    it('keeps the fresh run when the abandoned one settles later', async () => {
      const reads = new SharedReads();
      const { create, runs } = controlledRead<string>();
      const controller = new AbortController();
      track(reads.read('k', controller.signal, create));
      controller.abort();
      const next = track(reads.read('k', live(), create));

      runs[0]!.result.resolve('stale');
      await settle();
      expect(reads.size).toBe(1);
      expect(next.settled).toBe(false);
      const joiner = reads.read('k', live(), create);
      expect(create).toHaveBeenCalledTimes(2);

      runs[1]!.result.resolve('fresh');
      await expect(joiner).resolves.toBe('fresh');
      expect(next.value).toBe('fresh');
    });
  });

  // Jest fails the running test on an unhandled rejection; these give Node the turns in which it would report one.
  describe('unhandled rejections', () => {
    const nextTurns = async (): Promise<void> => {
      for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    };

    it('raises none when a run fails after every waiter gave up', async () => {
      const reads = new SharedReads();
      const { create, runs } = controlledRead<string>();
      const controller = new AbortController();
      reads.read('k', controller.signal, create).catch(() => undefined);
      controller.abort();
      runs[0]!.result.reject(new Error('503 after everyone left'));
      await nextTurns();
    });

    it('raises none when a shared run fails and every waiter handles it', async () => {
      const reads = new SharedReads();
      const { create, runs } = controlledRead<string>();
      const waiters = [reads.read('k', live(), create), reads.read('k', live(), create)];
      runs[0]!.result.reject(new Error('403'));
      await Promise.allSettled(waiters);
      await nextTurns();
    });
  });
});
