/**
 * Rotation failures as Warning events on the pod. Since driver v1.6 a failing republish is reported to kubelet as a
 * success, so a revoked role or an expired credential would show nowhere but our log while the pod keeps serving its
 * old files. A failure is a rotation failure when this provider mounted the same pod (by uid) successfully before; a
 * first mount's failure is left to kubelet, which already shows it as FailedMount.
 *
 * Events are recorded the way client-go's recorder (kubelet's) does, so a rotation failing every two minutes costs
 * etcd one object per pod, not one per attempt: the same event again PATCHes its count and lastTimestamp; ten
 * different messages for the same pod and reason within ten minutes are combined into one; and a token bucket per
 * pod (25 at once, then one per five minutes) bounds what a pod can cost. Everything is bounded in memory and sent
 * one call at a time off the mount's path: a mount never waits for, or fails because of, an event.
 */
import { hostname } from 'node:os';
import { Counter, type Registry } from 'prom-client';
import type { ProviderError } from '../errors';
import type { MountHooks } from '../spec/ports';
import { POD_NAME, POD_NAMESPACE, POD_UID, SECRET_PROVIDER_CLASS } from '../mount/parameters';
import type { MountSpec } from '../spec/types';
import type { Logger } from '../observability/logger';
import { KubeApiError, type KubeApi } from './client';
import { BoundedCache } from '../util/bounded-cache';

export const ROTATION_FAILURE_REASON = 'SecretRotationFailed';
export const EVENT_COMPONENT = 'csi-secrets-store-provider-azure';
/** Events longer than this are cut: the pod's describe output stays readable, etcd's objects small. */
export const MAX_EVENT_MESSAGE = 1024;

/** client-go's spam filter defaults: a burst of 25 events per object, refilled at one per 300 s. */
const BUCKET_BURST = 25;
const BUCKET_REFILL_MS = 300_000;
/** client-go's aggregator defaults: 10 similar events (same object and reason) within 10 minutes are combined. */
const AGGREGATE_AFTER = 10;
const AGGREGATE_WINDOW_MS = 600_000;
/** Pods remembered as mounted, and events remembered for their counts: far above the pods of one node. */
const MAX_PODS = 10_000;
const MAX_EVENTS = 4_096;
/** Events waiting to be sent; past this a flood is dropped, not queued. */
const MAX_QUEUED = 256;

interface PendingEvent {
  pod: { name: string; namespace: string; uid: string };
  message: string;
}

interface RecordedEvent {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: string;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

interface Similar {
  messages: Set<string>;
  since: number;
}

export interface RotationEventsOptions {
  api: KubeApi;
  logger: Logger;
  registry: Registry;
  /** The node, for the event's source.host (defaults to the host name: the provider runs on the host network). */
  host?: string;
  now?: () => number;
}

export class RotationFailureEvents implements Pick<MountHooks, 'succeeded' | 'failed'> {
  private readonly mountedPods = new BoundedCache<string, true>(MAX_PODS);
  private readonly recorded = new BoundedCache<string, RecordedEvent>(MAX_EVENTS);
  private readonly buckets = new BoundedCache<string, Bucket>(MAX_PODS);
  private readonly similar = new BoundedCache<string, Similar>(MAX_PODS);
  private readonly queue: PendingEvent[] = [];
  private sending: Promise<void> | undefined;
  private failing: string | undefined;
  private readonly failures: Counter<'grpc_code'>;
  private readonly host: string;
  private readonly now: () => number;
  private sequence = 0;

  constructor(private readonly options: RotationEventsOptions) {
    this.host = options.host ?? hostname();
    this.now = options.now ?? Date.now;
    this.failures = new Counter({
      name: 'csi_provider_azure_rotation_failures_total',
      help: 'Mounts that failed for a pod this provider had mounted before (a failed rotation), by gRPC status code',
      labelNames: ['grpc_code'],
      registers: [options.registry],
    });
  }

  succeeded(attributes: Record<string, string>): void {
    const uid = (attributes[POD_UID] ?? '').trim();
    if (uid) this.mountedPods.set(uid, true);
  }

  failed(attributes: Record<string, string>, _spec: MountSpec | undefined, error: ProviderError): void {
    const uid = (attributes[POD_UID] ?? '').trim();
    if (!uid || !this.mountedPods.get(uid)) return;
    this.failures.inc({ grpc_code: error.status });
    const name = (attributes[POD_NAME] ?? '').trim();
    const namespace = (attributes[POD_NAMESPACE] ?? '').trim();
    if (!name || !namespace) return;
    const spc = (attributes[SECRET_PROVIDER_CLASS] ?? '').trim().slice(0, 253);
    const message = bounded(
      `the secrets of SecretProviderClass ${spc} could not be refreshed (the pod keeps the files of its last successful mount): ${error.message}`,
    );
    if (!this.takeToken(uid)) {
      this.options.logger.debug({ pod: name, namespace }, 'rotation failure event dropped: the pod has used its event budget');
      return;
    }
    if (this.queue.length >= MAX_QUEUED) return;
    this.queue.push({ pod: { name, namespace, uid }, message });
    this.sending ??= this.drain().finally(() => (this.sending = undefined));
  }

  /** Resolves once every queued event was sent or given up on (for tests and shutdown). */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }

  private takeToken(uid: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(uid) ?? { tokens: BUCKET_BURST, updatedAt: now };
    bucket.tokens = Math.min(BUCKET_BURST, bucket.tokens + (now - bucket.updatedAt) / BUCKET_REFILL_MS);
    bucket.updatedAt = now;
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    this.buckets.set(uid, bucket);
    return allowed;
  }

  private async drain(): Promise<void> {
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      try {
        await this.record(next);
        if (this.failing) {
          this.options.logger.info('rotation failure events are posted again');
          this.failing = undefined;
        }
      } catch (err) {
        this.reportFailure(err);
      }
    }
  }

  /** One event: a new one, or the count of the same one raised (re-created when it expired from etcd). */
  private async record(event: PendingEvent): Promise<void> {
    const { message, key } = this.aggregated(event);
    const timestamp = new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const known = this.recorded.get(key);
    if (known) {
      const path = `/api/v1/namespaces/${encodeURIComponent(known.namespace)}/events/${encodeURIComponent(known.name)}`;
      try {
        await this.options.api.call('PATCH', path, { count: known.count + 1, lastTimestamp: timestamp, message }, 'application/merge-patch+json');
        this.recorded.set(key, { ...known, count: known.count + 1 });
        return;
      } catch (err) {
        // Events expire (an hour by default): start a new one, as client-go does.
        if (!(err instanceof KubeApiError && err.failure === 'not_found')) throw err;
        this.recorded.delete(key);
      }
    }
    const name = `${event.pod.name}.${this.eventSuffix()}`;
    await this.options.api.call('POST', `/api/v1/namespaces/${encodeURIComponent(event.pod.namespace)}/events`, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: event.pod.namespace },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: event.pod.name, namespace: event.pod.namespace, uid: event.pod.uid },
      reason: ROTATION_FAILURE_REASON,
      message,
      type: 'Warning',
      count: 1,
      firstTimestamp: timestamp,
      lastTimestamp: timestamp,
      source: { component: EVENT_COMPONENT, host: this.host },
      reportingComponent: EVENT_COMPONENT,
      reportingInstance: this.host,
    });
    this.recorded.set(key, { name, namespace: event.pod.namespace, count: 1, firstTimestamp: timestamp });
  }

  /**
   * client-go's aggregation: past ten different messages in the window, one combined event (one key, whatever the
   * message) carries the latest message and counts them all.
   */
  private aggregated(event: PendingEvent): { message: string; key: string } {
    const now = this.now();
    let similar = this.similar.get(event.pod.uid);
    if (!similar || now - similar.since > AGGREGATE_WINDOW_MS) similar = { messages: new Set(), since: now };
    if (similar.messages.size < AGGREGATE_AFTER) similar.messages.add(event.message);
    this.similar.set(event.pod.uid, similar);
    if (similar.messages.size >= AGGREGATE_AFTER && !similar.messages.has(event.message)) {
      return { message: bounded(`(combined from similar events): ${event.message}`), key: `${event.pod.uid}\n(combined)` };
    }
    return { message: event.message, key: `${event.pod.uid}\n${event.message}` };
  }

  /** client-go names events <object>.<hex nanoseconds>; a sequence keeps two in the same millisecond apart. */
  private eventSuffix(): string {
    this.sequence = (this.sequence + 1) % 1_000_000;
    return (BigInt(this.now()) * 1_000_000n + BigInt(this.sequence)).toString(16);
  }

  /** One clear line when posting starts failing (and which permission or address to fix); then quiet until it works. */
  private reportFailure(err: unknown): void {
    const failure = err instanceof KubeApiError ? err.failure : 'other';
    const message = err instanceof Error ? err.message : String(err);
    if (this.failing === failure) {
      this.options.logger.debug({ err: message }, 'rotation failure event not posted');
      return;
    }
    this.failing = failure;
    const fix =
      failure === 'forbidden'
        ? ': grant the provider\'s service account create and patch on events (the chart does when rotationFailureEvents is on)'
        : '';
    this.options.logger.warn(
      { err: message },
      `cannot post rotation failure events to the Kubernetes API${fix}; mounts are unaffected, later failures are logged at -v=2`,
    );
  }
}

function bounded(message: string): string {
  return message.length <= MAX_EVENT_MESSAGE ? message : `${message.slice(0, MAX_EVENT_MESSAGE - 1)}…`;
}
