/**
 * A driver-like gRPC client for any target (unix:… or host:port), with its own connection: the driver's channel
 * options plus a local subchannel pool, so that N clients really open N connections to the listener.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { DRIVER_CHANNEL_OPTIONS, repoRoot } from '../../support/driver-client';

type Unary = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: unknown) => void,
) => void;

interface Constructors {
  Provider: grpc.ServiceClientConstructor;
  Health: grpc.ServiceClientConstructor;
}

let constructors: Constructors | undefined;

function load(): Constructors {
  if (constructors) return constructors;
  const root = repoRoot();
  const definition = protoLoader.loadSync([join(root, 'proto', 'provider.proto'), join(root, 'proto', 'health.proto')], {
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    v1alpha1: { CSIDriverProvider: grpc.ServiceClientConstructor };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  constructors = { Provider: pkg.v1alpha1.CSIDriverProvider, Health: pkg.grpc.health.v1.Health };
  return constructors;
}

export interface TestClient {
  version(): Promise<{ version: string; runtimeName: string; runtimeVersion: string }>;
  mount(attributes: Record<string, string>): Promise<{ files: Array<{ path: string; contents: Buffer }>; objectVersion: Array<{ id: string; version: string }> }>;
  health(): Promise<string>;
  close(): void;
}

export function createTestClient(target: string, deadlineMs = 20_000): TestClient {
  const { Provider, Health } = load();
  const options: grpc.ChannelOptions = { ...DRIVER_CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 };
  const provider = new Provider(target, grpc.credentials.createInsecure(), options);
  const health = new Health(target, grpc.credentials.createInsecure(), { ...options, channelOverride: provider.getChannel() });
  const call = <T>(client: grpc.Client, method: string, request: unknown): Promise<T> =>
    new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, Unary>)[method]!.bind(client);
      fn(request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, response) =>
        err ? reject(err) : resolve(response as T),
      );
    });
  return {
    version: () => call(provider, 'Version', { version: 'v1alpha1' }),
    mount: (attributes) =>
      call(provider, 'Mount', { attributes: JSON.stringify(attributes), secrets: '{}', targetPath: '/t', permission: '420' }),
    health: async () => (await call<{ status: string }>(health, 'Check', { service: '' })).status,
    close: () => provider.close(),
  };
}
