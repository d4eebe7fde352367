/**
 * Parsing a SecretProviderClass off the main thread. YAML parsing is synchronous, and even within the size bounds a
 * hostile `objects` text (100k keys, deep flow nesting) takes up to a second of CPU — several under a 200m CPU limit —
 * during which every other mount and /healthz would wait. Small texts (every real manifest) are parsed inline in
 * microseconds; larger ones go to one worker thread, one at a time, each with a time bound after which the worker is
 * replaced. The main event loop keeps serving meanwhile.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ProviderError } from '../errors';
import { parseMountParameters, type ParameterDefaults } from './parameters';
import type { ParseReply, ParseRequest } from './parse-worker';
import type { MountSpec } from '../spec/types';

/** `objects` texts up to this size are parsed inline: far above real manifests, far below a noticeable stall. */
export const INLINE_OBJECTS_BYTES = 16 * 1024;
/** The longest one off-thread parse may take; the bounded input parses in well under a second. */
export const PARSE_TIMEOUT_MS = 10_000;
/** Large parameter sets waiting for the worker at once; more is a flood, refused rather than queued. */
export const MAX_QUEUED_PARSES = 16;

interface Pending {
  request: ParseRequest;
  resolve: (spec: MountSpec) => void;
  reject: (err: Error) => void;
}

export class ParameterParser {
  private worker: Worker | undefined;
  private readonly queue: Pending[] = [];
  private running: { pending: Pending; timer: NodeJS.Timeout } | undefined;
  private nextId = 1;
  private readonly script = join(__dirname, 'parse-worker.js');
  /** Whether the compiled worker exists (not when running from sources, e.g. under ts-jest); it cannot change. */
  private readonly hasWorker = existsSync(this.script);

  async parse(attributes: Record<string, string>, secrets: Record<string, string>, defaults: ParameterDefaults): Promise<MountSpec> {
    const objects = attributes['objects'] ?? '';
    // Inline when small, and when there is no compiled worker.
    if (objects.length <= INLINE_OBJECTS_BYTES || !this.hasWorker) return parseMountParameters(attributes, secrets, defaults);
    if (this.queue.length >= MAX_QUEUED_PARSES) {
      throw new ProviderError(
        'ResourceExhausted',
        `${this.queue.length} large SecretProviderClasses (objects above ${INLINE_OBJECTS_BYTES / 1024} KiB) are already ` +
          'waiting to be parsed on this node; the driver retries the mount',
      );
    }
    return new Promise<MountSpec>((resolve, reject) => {
      this.queue.push({ request: { id: this.nextId++, attributes, secrets, defaults }, resolve, reject });
      this.pump();
    });
  }

  /** Stops the worker (shutdown); waiting parses fail. */
  async close(): Promise<void> {
    for (const pending of this.queue.splice(0)) pending.reject(new ProviderError('Cancelled', 'the provider is shutting down'));
    await this.worker?.terminate();
    this.worker = undefined;
  }

  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    const pending = this.queue.shift()!;
    const worker = this.ensureWorker();
    const timer = setTimeout(() => {
      // Never answered in time: this text is refused, and the worker (still busy with it) replaced.
      this.finish(undefined, new ProviderError('InvalidArgument', `objects took longer than ${PARSE_TIMEOUT_MS / 1000}s to parse: simplify it or split it over several SecretProviderClasses`));
      this.discardWorker();
    }, PARSE_TIMEOUT_MS);
    this.running = { pending, timer };
    worker.postMessage(pending.request);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.script);
    worker.unref();
    worker.on('message', (reply: ParseReply) => {
      if (this.running?.pending.request.id !== reply.id) return;
      if (reply.ok) this.finish(reply.spec);
      else if (reply.status) this.finish(undefined, new ProviderError(reply.status, reply.message));
      else this.finish(undefined, new ProviderError('Internal', 'internal error in the provider while parsing the parameters: see the provider logs'));
    });
    const onGone = (): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.finish(undefined, new ProviderError('Internal', 'the parameter parser stopped unexpectedly; the driver retries the mount'));
    };
    worker.on('error', onGone);
    worker.on('exit', onGone);
    this.worker = worker;
    return worker;
  }

  private discardWorker(): void {
    const worker = this.worker;
    this.worker = undefined;
    void worker?.terminate();
    this.pump();
  }

  private finish(spec: MountSpec | undefined, error?: Error): void {
    const running = this.running;
    if (!running) return;
    clearTimeout(running.timer);
    this.running = undefined;
    if (error) running.pending.reject(error);
    else running.pending.resolve(spec!);
    this.pump();
  }
}
