/** Small builders shared by the end-to-end tests: SecretProviderClass parameters and failed calls. */
import type { ServiceError } from '@grpc/grpc-js';

/** The `objects` parameter as users write it: `array:` of YAML strings, one per object entry. */
export function objects(entries: string[]): string {
  return `array:\n${entries.map((e) => `  - |\n${e.split('\n').map((l) => `    ${l}`).join('\n')}`).join('\n')}\n`;
}

/** The gRPC error a call failed with; throws if the call succeeded. */
export async function rejectionOf(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('expected the mount to fail');
}
