/**
 * What the Kubernetes-aware features (kube/) plug into a mount, as an interface the mount knows without knowing the
 * API: a step that may fill in parameters before parsing, a step that may refuse the parsed mount before any Azure
 * call, and the outcome of each mount. With no hooks (every such feature off, the default) a mount is as it always was.
 */
import type { ProviderError } from '../errors';
import type { MountSpec } from '../spec/types';

export interface MountHooks {
  /** Before parsing: the attributes to parse instead (e.g. with clientID from the service account); may throw ProviderError. */
  prepare?(attributes: Record<string, string>, secrets: Record<string, string>, signal: AbortSignal): Promise<Record<string, string>>;
  /** After parsing, before any Azure call: throws a ProviderError to refuse the mount. */
  admit?(spec: MountSpec, signal: AbortSignal): Promise<void>;
  /** The mount returned its files. Must not throw or wait. */
  succeeded?(attributes: Record<string, string>, spec: MountSpec): void;
  /** The mount failed with this error (`spec` when the parameters parsed). Must not throw or wait. */
  failed?(attributes: Record<string, string>, spec: MountSpec | undefined, error: ProviderError): void;
}
