/**
 * A gRPC client that talks to the provider the way the Secrets Store CSI driver does: unix socket, insecure
 * credentials, authority `localhost`, JSON-encoded attributes and secrets (the JSON text `null` when the volume has no
 * nodePublishSecretRef, as the driver marshals a nil map), permission as a decimal string, 4 MiB receive limit.
 * What the driver really sends is checked by the real-driver suite in test/k8s; this client serves the fast tests.
 *
 * proto-loader options: keepCase false (fields in camelCase: runtimeName, objectVersion, currentObjectVersion), the
 * same choice the provider's server makes, so tests and product read the same names. Names never reach the wire
 * (protobuf encodes field numbers), so this choice cannot hide a contract bug. bytes as Buffer, defaults filled in.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface VersionResponse {
  version: string;
  runtimeName: string;
  runtimeVersion: string;
}

export interface ObjectVersion {
  id: string;
  version: string;
}

export interface MountedFile {
  path: string;
  mode: number;
  contents: Buffer;
}

export interface MountResult {
  files: MountedFile[];
  objectVersion: ObjectVersion[];
  /** The response's `error` message (code), null when unset. The driver fails the mount when code is non-empty. */
  error: { code: string } | null;
}

export interface MountRequestInput {
  /** SecretProviderClass parameters plus the driver's pod attributes. */
  attributes: Record<string, string>;
  /** nodePublishSecretRef data; omitted = no nodePublishSecretRef, sent as `null` like the driver does. */
  secrets?: Record<string, string>;
  targetPath?: string;
  /** Default file mode as a decimal string; default "420" (0644). */
  permission?: string;
  currentObjectVersion?: ObjectVersion[];
}

/** A MountRequest exactly as it goes on the wire: for tests of what the driver would never send (bad JSON etc.). */
export interface RawMountRequest {
  attributes: string;
  secrets: string;
  targetPath: string;
  permission: string;
  currentObjectVersion?: ObjectVersion[];
}

export interface CallOptions {
  /** Deadline for the call; default 30 s for Mount, 5 s for the others. */
  deadlineMs?: number;
  /** Request metadata (HTTP/2 headers); the driver sends none of its own. */
  metadata?: Record<string, string>;
}

export interface DriverClient {
  version(opts?: CallOptions): Promise<VersionResponse>;
  /** Rejects with the grpc ServiceError (code, details) when the provider fails the call. */
  mount(request: MountRequestInput, opts?: CallOptions): Promise<MountResult>;
  /** Sends the fields as given, without JSON-encoding or defaults. */
  mountRaw(request: RawMountRequest, opts?: CallOptions): Promise<MountResult>;
  /** grpc.health.v1 Check; resolves to the status name, e.g. "SERVING". */
  healthCheck(service?: string, opts?: CallOptions): Promise<string>;
  close(): void;
}

/** What the driver's gRPC client sets; 4 MiB is its (and grpc's) default receive limit. */
export const DRIVER_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.default_authority': 'localhost',
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
};

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  bytes: Buffer,
};

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: unknown) => void,
) => grpc.ClientUnaryCall;

interface Loaded {
  Provider: grpc.ServiceClientConstructor;
  Health: grpc.ServiceClientConstructor;
}

let loaded: Loaded | undefined;

/** The repository root: the nearest ancestor with proto/provider.proto (works from test/ and from dist/test/). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(join(dir, 'proto', 'provider.proto'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find proto/provider.proto above ${__dirname}`);
    dir = up;
  }
}

function load(): Loaded {
  if (loaded) return loaded;
  const root = repoRoot();
  const definition = protoLoader.loadSync(
    [join(root, 'proto', 'provider.proto'), join(root, 'proto', 'health.proto')],
    LOADER_OPTIONS,
  );
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    v1alpha1: { CSIDriverProvider: grpc.ServiceClientConstructor };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  loaded = { Provider: pkg.v1alpha1.CSIDriverProvider, Health: pkg.grpc.health.v1.Health };
  return loaded;
}

export interface DriverClientOptions {
  /**
   * The HTTP/2 :authority; default `localhost` as driver v1.6 sends. Driver v1.5 and older (grpc-go's
   * `grpc.Dial(<path>)`) send the socket path itself.
   */
  authority?: string;
}

export function createDriverClient(socketPath: string, options: DriverClientOptions = {}): DriverClient {
  const { Provider, Health } = load();
  const target = `unix:${socketPath}`;
  const credentials = grpc.credentials.createInsecure();
  const channelOptions = { ...DRIVER_CHANNEL_OPTIONS, ...(options.authority ? { 'grpc.default_authority': options.authority } : {}) };
  const provider = new Provider(target, credentials, channelOptions);
  // Share the provider's channel so health checks and RPCs use one connection, as a single driver client does.
  const health = new Health(target, credentials, { ...channelOptions, channelOverride: provider.getChannel() });

  const call = <T>(client: grpc.Client, method: string, request: unknown, deadlineMs: number, headers: Record<string, string> = {}): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const fn = (client as unknown as Record<string, UnaryMethod>)[method]!.bind(client);
      const metadata = new grpc.Metadata();
      for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
      fn(request, metadata, { deadline: Date.now() + deadlineMs }, (err, response) => {
        if (err) reject(err);
        else resolve(response as T);
      });
    });

  async function mountRaw(message: RawMountRequest, opts: CallOptions): Promise<MountResult> {
    const response = await call<{
      files?: Array<{ path: string; mode: number; contents: Buffer }>;
      objectVersion?: ObjectVersion[];
      error?: { code: string } | null;
    }>(provider, 'Mount', { currentObjectVersion: [], ...message }, opts.deadlineMs ?? 30_000, opts.metadata);
    return {
      files: (response.files ?? []).map((f) => ({ path: f.path, mode: f.mode, contents: Buffer.from(f.contents) })),
      objectVersion: (response.objectVersion ?? []).map((o) => ({ id: o.id, version: o.version })),
      error: response.error ?? null,
    };
  }

  return {
    version: (opts = {}) => call<VersionResponse>(provider, 'Version', { version: 'v1alpha1' }, opts.deadlineMs ?? 5000),
    mount(request, opts = {}) {
      return mountRaw({
        attributes: JSON.stringify(request.attributes),
        secrets: request.secrets === undefined ? 'null' : JSON.stringify(request.secrets),
        targetPath: request.targetPath ?? '/var/lib/kubelet/pods/test-pod-uid/volumes/kubernetes.io~csi/secrets-store-inline/mount',
        permission: request.permission ?? '420',
        currentObjectVersion: request.currentObjectVersion ?? [],
      }, opts);
    },
    mountRaw: (request, opts = {}) => mountRaw(request, opts),
    async healthCheck(service = '', opts = {}) {
      const response = await call<{ status: string }>(health, 'Check', { service }, opts.deadlineMs ?? 5000);
      return response.status;
    },
    close() {
      // One channel behind both clients: closing it once closes both.
      provider.close();
    },
  };
}

/** One raw Mount on a short-lived connection (see RawMountRequest). */
export async function rawMount(socketPath: string, request: RawMountRequest, opts: CallOptions = {}): Promise<MountResult> {
  const client = createDriverClient(socketPath);
  try {
    return await client.mountRaw(request, opts);
  } finally {
    client.close();
  }
}
