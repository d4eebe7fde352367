/**
 * Validation of Kubernetes objects against the Kubernetes API schema, with kubernetes-models (the OpenAPI schema of
 * each kind compiled into validators; types, required fields, enums and formats). It does not reject unknown fields,
 * so the tests also assert the fields that matter by name.
 *
 * SecretProviderClass is a custom resource outside that schema: checkSecretProviderClass checks its shape here and the
 * tests run its parameters through the provider's own parser.
 */
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodSecurityPolicy } from 'kubernetes-models/policy/v1beta1/PodSecurityPolicy';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import type { K8sObject } from './helm';

interface Validatable {
  validate(): void;
}

const MODELS: Record<string, new (data: never) => Validatable> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Pod': Pod,
  'v1/Secret': Secret,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
  'policy/v1beta1/PodSecurityPolicy': PodSecurityPolicy,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
};

export const SECRET_PROVIDER_CLASS_API = 'secrets-store.csi.x-k8s.io/v1';

/** Throws, naming the object and the failing paths, when the object does not match its kind's schema. */
export function validateObject(object: K8sObject): void {
  const where = `${object.kind} ${object.metadata?.name}`;
  if (object.apiVersion === SECRET_PROVIDER_CLASS_API && object.kind === 'SecretProviderClass') {
    checkSecretProviderClass(object);
    return;
  }
  const Model = MODELS[`${object.apiVersion}/${object.kind}`];
  if (!Model) throw new Error(`${where}: no schema for ${object.apiVersion} ${object.kind} in this check; add it to MODELS`);
  try {
    new Model(object as never).validate();
  } catch (err) {
    throw new Error(`${where} does not match the Kubernetes schema: ${(err as Error).message}`);
  }
}

export interface SecretProviderClassSpec {
  provider: string;
  parameters: Record<string, string>;
  secretObjects?: Array<{ secretName: string; type: string; data: Array<{ objectName: string; key: string }>; labels?: Record<string, string> }>;
}

/** The shape the driver's CRD (secrets-store.csi.x-k8s.io/v1) accepts, for the fields our examples use. */
export function checkSecretProviderClass(object: K8sObject): SecretProviderClassSpec {
  const where = `SecretProviderClass ${object.metadata?.name}`;
  const fail = (why: string): never => {
    throw new Error(`${where}: ${why}`);
  };
  if (!object.metadata?.name) fail('metadata.name is required');
  const spec = object['spec'] as Record<string, unknown> | undefined;
  if (!spec || typeof spec !== 'object') return fail('spec is required');
  for (const key of Object.keys(spec)) if (!['provider', 'parameters', 'secretObjects'].includes(key)) fail(`unknown field spec.${key}`);
  if (typeof spec['provider'] !== 'string' || spec['provider'] === '') fail('spec.provider is required');
  const parameters = spec['parameters'] as Record<string, unknown> | undefined;
  if (!parameters || typeof parameters !== 'object') return fail('spec.parameters is required');
  for (const [key, value] of Object.entries(parameters)) if (typeof value !== 'string') fail(`spec.parameters.${key} must be a string (quote it)`);
  const secretObjects = spec['secretObjects'];
  if (secretObjects !== undefined) {
    if (!Array.isArray(secretObjects)) fail('spec.secretObjects must be a list');
    (secretObjects as Array<Record<string, unknown>>).forEach((s, i) => {
      for (const key of Object.keys(s)) if (!['secretName', 'type', 'data', 'labels', 'annotations'].includes(key)) fail(`unknown field spec.secretObjects[${i}].${key}`);
      if (typeof s['secretName'] !== 'string' || typeof s['type'] !== 'string') fail(`spec.secretObjects[${i}] needs secretName and type`);
      if (!Array.isArray(s['data']) || s['data'].length === 0) fail(`spec.secretObjects[${i}].data must list objectName/key pairs`);
      for (const d of s['data'] as Array<Record<string, unknown>>) {
        if (typeof d['objectName'] !== 'string' || typeof d['key'] !== 'string') fail(`spec.secretObjects[${i}].data needs objectName and key`);
      }
    });
  }
  return spec as unknown as SecretProviderClassSpec;
}
