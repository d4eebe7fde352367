/**
 * The recorder's bookkeeping, driven by a clock: which failures become events, how repeats are counted, combined and
 * rate-limited per pod. (That the API server accepts the events as sent is test/k8s/kube-api.test.ts.)
 */
import { Registry } from 'prom-client';
import { ProviderError } from '../../../src/errors';
import { KubeApiError, type KubeApi } from '../../../src/kube/client';
import { MAX_EVENT_MESSAGE, RotationFailureEvents } from '../../../src/kube/rotation-events';
import { createLogger } from '../../../src/observability/logger';

interface Call {
  method: string;
  path: string;
  body: { message?: string; count?: number; metadata?: { name: string } };
}

function setup(answer: (call: Call) => unknown = () => ({})) {
  const calls: Call[] = [];
  const lines: string[] = [];
  const api: KubeApi = {
    server: 'https://api',
    call: async <T>(method: string, path: string, body?: unknown) => {
      const call = { method, path, body: body as Call['body'] };
      calls.push(call);
      const result = answer(call);
      if (result instanceof Error) throw result;
      return result as T;
    },
    close: () => undefined,
  };
  let now = Date.parse('2026-12-02T10:00:00Z');
  const registry = new Registry();
  const logger = createLogger({ json: true, verbosity: 0, destination: { write: (line: string) => void lines.push(line) } });
  const events = new RotationFailureEvents({ api, logger, registry, host: 'node-0', now: () => now });
  return { events, calls, lines, registry, advance: (ms: number) => (now += ms) };
}

const attributes = (uid: string) => ({
  'csi.storage.k8s.io/pod.name': `pod-${uid}`,
  'csi.storage.k8s.io/pod.namespace': 'shop',
  'csi.storage.k8s.io/pod.uid': uid,
  secretProviderClass: 'shop-secrets',
});
const failure = (message = 'Key Vault shop-kv answered 403 Forbidden') => new ProviderError('PermissionDenied', message);

it('ignores failures of pods it never mounted (kubelet reports those as FailedMount)', async () => {
  const { events, calls } = setup();
  events.failed(attributes('a'), undefined, failure());
  await events.flush();
  expect(calls).toEqual([]);
});

it('creates one event per pod and message, then patches its count', async () => {
  const { events, calls, registry } = setup();
  events.succeeded(attributes('a'));
  for (let i = 0; i < 3; i++) events.failed(attributes('a'), undefined, failure());
  await events.flush();
  expect(calls.map((c) => c.method)).toEqual(['POST', 'PATCH', 'PATCH']);
  expect(calls[2]!.body.count).toBe(3);
  expect(calls[1]!.path).toBe(`/api/v1/namespaces/shop/events/${calls[0]!.body.metadata!.name}`);
  expect(await registry.getSingleMetricAsString('csi_provider_azure_rotation_failures_total')).toContain('grpc_code="PermissionDenied"} 3');
});

it('re-creates an event that expired from the API server', async () => {
  let expired = false;
  const { events, calls } = setup((c) => (c.method === 'PATCH' && expired ? new KubeApiError('not_found', 404, 'gone') : {}));
  events.succeeded(attributes('a'));
  events.failed(attributes('a'), undefined, failure());
  await events.flush();
  expired = true;
  events.failed(attributes('a'), undefined, failure());
  await events.flush();
  expect(calls.map((c) => c.method)).toEqual(['POST', 'PATCH', 'POST']);
});

it('bounds the message', async () => {
  const { events, calls } = setup();
  events.succeeded(attributes('a'));
  events.failed(attributes('a'), undefined, failure('x'.repeat(10_000)));
  await events.flush();
  expect(calls[0]!.body.message!.length).toBe(MAX_EVENT_MESSAGE);
});

it('combines more than ten different messages of one pod within ten minutes into one event', async () => {
  const { events, calls } = setup();
  events.succeeded(attributes('a'));
  for (let i = 0; i < 15; i++) events.failed(attributes('a'), undefined, failure(`failure number ${i}`));
  await events.flush();
  const posts = calls.filter((c) => c.method === 'POST');
  expect(posts).toHaveLength(11);
  expect(posts[10]!.body.message).toMatch(/^\(combined from similar events\): /);
  expect(calls.filter((c) => c.method === 'PATCH')).toHaveLength(4);
});

it('rate-limits each pod like client-go: a burst of 25, then one per five minutes', async () => {
  const { events, calls, advance } = setup();
  events.succeeded(attributes('a'));
  events.succeeded(attributes('b'));
  for (let i = 0; i < 40; i++) events.failed(attributes('a'), undefined, failure());
  await events.flush();
  expect(calls).toHaveLength(25);
  advance(300_000);
  events.failed(attributes('a'), undefined, failure());
  events.failed(attributes('a'), undefined, failure());
  events.failed(attributes('b'), undefined, failure());
  await events.flush();
  expect(calls).toHaveLength(27);
});

it('logs one line when the API refuses, naming the permission, and one when it works again', async () => {
  let forbidden = true;
  const { events, lines } = setup(() => (forbidden ? new KubeApiError('forbidden', 403, 'POST /api/v1/namespaces/shop/events answered 403') : {}));
  events.succeeded(attributes('a'));
  for (let i = 0; i < 5; i++) events.failed(attributes('a'), undefined, failure(`m${i}`));
  await events.flush();
  const warnings = lines.filter((l) => l.includes('cannot post rotation failure events'));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain('create and patch on events');
  forbidden = false;
  events.failed(attributes('a'), undefined, failure('m9'));
  await events.flush();
  expect(lines.filter((l) => l.includes('posted again'))).toHaveLength(1);
});
