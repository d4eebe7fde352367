/**
 * The identity half of a value cache key: everything that decides whether Key Vault lets a mount read an object. Two
 * mounts share cached answers only if all of it matches, so an answer read by one identity can never be served to
 * another: a different cloud, tenant, mode, client id, resource id, client secret, service account, token subject or
 * pod (pod identity) is a different key, and Key Vault is asked afresh. What identifies the caller within a mode is
 * the mode's own (identity/modes).
 */
import { modeOf } from '../identity/modes/registry';
import type { MountSpec } from '../spec/types';

export function cacheIdentityKey(spec: MountSpec): string {
  // The cloud as the class names it (a custom cloud also by its file): the same name always means the same endpoints.
  const cloud = [spec.cloudName.toLowerCase(), spec.cloudEnvFileName];
  const tenant = spec.tenantId.toLowerCase();
  return modeOf(spec.identity).valueCacheKey(spec.identity, cloud, tenant);
}
