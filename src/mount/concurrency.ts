/**
 * Runs `work` over `items` with at most `limit` in flight, keeping results in input order. The first failure aborts
 * the shared signal (so fetches still in flight are cancelled, not awaited) and is the error thrown: a mount returns
 * all its files or fails whole.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  parent: AbortSignal,
  work: (item: T, signal: AbortSignal) => Promise<R>,
): Promise<R[]> {
  const controller = new AbortController();
  const onParentAbort = (): void => controller.abort(parent.reason);
  if (parent.aborted) onParentAbort();
  else parent.addEventListener('abort', onParentAbort, { once: true });

  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index]!, controller.signal);
      } catch (error) {
        if (failure === undefined) {
          failure = { error };
          controller.abort(error);
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  } finally {
    parent.removeEventListener('abort', onParentAbort);
  }
  if (failure !== undefined) throw failure.error;
  return results;
}
