/**
 * What features outside the mount (the Kubernetes-aware ones in kube/, the Key Vault value cache) plug into it, as an
 * interface the mount knows without knowing them: a step that may fill in parameters before parsing, a step that may
 * refuse the parsed mount before any Azure call, and the outcome of each mount. With no hooks (every such feature off,
 * the default) a mount is as it always was.
 */
import type { ProviderError } from '../errors';
import type { MountSpec } from './types';

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

/** Both features' hooks, `first`'s before `second`'s at each step (`second` prepares what `first` prepared). */
export function combineHooks(first: MountHooks, second: MountHooks): MountHooks {
  const { prepare: prepareA, admit: admitA, succeeded: succeededA, failed: failedA } = first;
  const { prepare: prepareB, admit: admitB, succeeded: succeededB, failed: failedB } = second;
  return {
    ...(prepareA || prepareB
      ? {
          prepare: async (attributes, secrets, signal) => {
            const prepared = prepareA ? await prepareA.call(first, attributes, secrets, signal) : attributes;
            return prepareB ? prepareB.call(second, prepared, secrets, signal) : prepared;
          },
        }
      : {}),
    ...(admitA || admitB
      ? {
          admit: async (spec, signal) => {
            await admitA?.call(first, spec, signal);
            await admitB?.call(second, spec, signal);
          },
        }
      : {}),
    ...(succeededA || succeededB
      ? {
          succeeded: (attributes, spec) => {
            succeededA?.call(first, attributes, spec);
            succeededB?.call(second, attributes, spec);
          },
        }
      : {}),
    ...(failedA || failedB
      ? {
          failed: (attributes, spec, error) => {
            failedA?.call(first, attributes, spec, error);
            failedB?.call(second, attributes, spec, error);
          },
        }
      : {}),
  };
}
