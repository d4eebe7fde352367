/**
 * A small client of the real kube-apiserver for the suite's own calls (creating pods, classes and secrets, reading
 * what the driver recorded). It speaks the plain REST API with a bearer token over TLS to the test CA; the driver and
 * the provider use their own clients. Paths are derived from apiVersion and kind for the few kinds the suite uses.
 */
import { request as httpsRequest } from 'node:https';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export class KubeApiError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string) {
    super(message);
  }
}

/** Plural resource names and whether the kind is namespaced. */
const RESOURCES: Record<string, { plural: string; namespaced: boolean }> = {
  Namespace: { plural: 'namespaces', namespaced: false },
  ServiceAccount: { plural: 'serviceaccounts', namespaced: true },
  Pod: { plural: 'pods', namespaced: true },
  Secret: { plural: 'secrets', namespaced: true },
  Event: { plural: 'events', namespaced: true },
  CSIDriver: { plural: 'csidrivers', namespaced: false },
  CustomResourceDefinition: { plural: 'customresourcedefinitions', namespaced: false },
  SecretProviderClass: { plural: 'secretproviderclasses', namespaced: true },
  SecretProviderClassPodStatus: { plural: 'secretproviderclasspodstatuses', namespaced: true },
  ClusterRole: { plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { plural: 'clusterrolebindings', namespaced: false },
};

export function resourcePath(apiVersion: string, kind: string, namespace?: string, name?: string): string {
  const resource = RESOURCES[kind];
  if (!resource) throw new Error(`kube.ts knows no resource for kind ${kind}`);
  const group = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = resource.namespaced ? `/namespaces/${encodeURIComponent(namespace ?? 'default')}` : '';
  return `${group}${ns}/${resource.plural}${name ? `/${encodeURIComponent(name)}` : ''}`;
}

export interface KubeClient {
  server: string;
  request<T = unknown>(method: string, path: string, body?: unknown, contentType?: string): Promise<T>;
  create<T extends KubeObject>(object: T): Promise<T>;
  get<T extends KubeObject = KubeObject>(apiVersion: string, kind: string, name: string, namespace?: string): Promise<T>;
  /** undefined when the object does not exist. */
  find<T extends KubeObject = KubeObject>(apiVersion: string, kind: string, name: string, namespace?: string): Promise<T | undefined>;
  list<T extends KubeObject = KubeObject>(apiVersion: string, kind: string, namespace?: string, labelSelector?: string): Promise<T[]>;
  /** A JSON merge patch. */
  patch<T extends KubeObject = KubeObject>(apiVersion: string, kind: string, name: string, namespace: string | undefined, patch: unknown): Promise<T>;
  delete(apiVersion: string, kind: string, name: string, namespace?: string): Promise<void>;
}

export function createKubeClient(server: string, token: string, caPem: string): KubeClient {
  const request = <T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = httpsRequest(
        `${server}${path}`,
        {
          method,
          ca: caPem,
          // One connection per call: nothing stays open to keep the test process alive after the API server stops.
          agent: false,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(payload ? { 'content-type': contentType, 'content-length': String(payload.length) } : {}),
          },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            // Health endpoints (/readyz) answer plain text; everything else JSON.
            let parsed: { reason?: string; message?: string } = {};
            try {
              if (text) parsed = JSON.parse(text) as typeof parsed;
            } catch {
              parsed = { message: text.slice(0, 2000) };
            }
            if ((res.statusCode ?? 0) >= 300) {
              reject(new KubeApiError(res.statusCode ?? 0, parsed.reason ?? '', `${method} ${path}: ${res.statusCode} ${parsed.message ?? text}`));
            } else {
              resolve(parsed as T);
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
      req.on('error', reject);
      req.end(payload);
    });

  const get = <T extends KubeObject>(apiVersion: string, kind: string, name: string, namespace?: string): Promise<T> =>
    request<T>('GET', resourcePath(apiVersion, kind, namespace, name));

  return {
    server,
    request,
    create: (object) => request('POST', resourcePath(object.apiVersion, object.kind, object.metadata.namespace), object),
    get,
    async find<T extends KubeObject>(apiVersion: string, kind: string, name: string, namespace?: string): Promise<T | undefined> {
      try {
        return await get<T>(apiVersion, kind, name, namespace);
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) return undefined;
        throw err;
      }
    },
    async list(apiVersion, kind, namespace, labelSelector) {
      const query = labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : '';
      const result = await request<{ items: never[] }>('GET', `${resourcePath(apiVersion, kind, namespace)}${query}`);
      return result.items;
    },
    patch: (apiVersion, kind, name, namespace, patch) =>
      request('PATCH', resourcePath(apiVersion, kind, namespace, name), patch, 'application/merge-patch+json'),
    async delete(apiVersion, kind, name, namespace) {
      await request('DELETE', resourcePath(apiVersion, kind, namespace, name));
    },
  };
}
