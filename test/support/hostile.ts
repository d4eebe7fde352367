/**
 * Hostile and broken answers the stand-ins can give in place of their real ones, for the fault suite: a request that
 * is never answered, a body far larger than the service ever sends (streamed, so the test process does not hold it),
 * a body that is not JSON or is cut short. Each stand-in exposes a `hostile` hook that returns one of these for the
 * requests it wants to spoil; undefined answers normally.
 */
import type { ServerResponse } from 'node:http';

export type HostileAnswer =
  /** Accept the request and never answer it (the connection stays open until the stand-in closes). */
  | { hang: true }
  | {
      status: number;
      headers?: Record<string, string>;
      /** The body, or its start when `fillBytes` is set. */
      body?: string;
      /** Bytes of filler streamed after `body` (e.g. 48 MB), with backpressure; the client may hang up at any time. */
      fillBytes?: number;
    };

/** Requests held open by `hang` answers, so the stand-in can end them when it closes. */
export class HangingRequests {
  private readonly held = new Set<ServerResponse>();

  hold(res: ServerResponse): void {
    this.held.add(res);
    res.once('close', () => this.held.delete(res));
  }

  releaseAll(): void {
    for (const res of this.held) res.destroy();
    this.held.clear();
  }

  get count(): number {
    return this.held.size;
  }
}

export function writeHostileAnswer(res: ServerResponse, answer: HostileAnswer, hanging: HangingRequests): number {
  if ('hang' in answer) {
    hanging.hold(res);
    return 0;
  }
  const head = Buffer.from(answer.body ?? '');
  const fill = answer.fillBytes ?? 0;
  res.writeHead(answer.status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(head.length + fill),
    ...answer.headers,
  });
  if (fill === 0) {
    res.end(head);
    return answer.status;
  }
  res.write(head);
  const chunk = Buffer.alloc(64 * 1024, 'A');
  let left = fill;
  const pump = (): void => {
    while (left > 0 && !res.destroyed) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  res.on('error', () => undefined);
  pump();
  return answer.status;
}
