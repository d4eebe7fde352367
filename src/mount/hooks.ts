/**
 * Joins the hooks of features outside the mount (MountHooks, in ports.ts) into one. With no hooks (every such feature
 * off, the default) a mount is as it always was.
 */
import type { MountHooks } from '../spec/ports';

export type { MountHooks } from '../spec/ports';

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
