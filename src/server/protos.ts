import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { packageRoot } from '../util/package-root';

/** Where proto/ is: at the repository or image root. */
function protoDir(): string {
  return join(packageRoot(), 'proto');
}

/** proto-loader options: camelCase fields, bytes as Buffer, defaults filled in so handlers never see undefined. */
export const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface LoadedServices {
  provider: grpc.ServiceDefinition;
  health: grpc.ServiceDefinition;
}

export function loadServices(): LoadedServices {
  const definition = protoLoader.loadSync(
    [join(protoDir(), 'provider.proto'), join(protoDir(), 'health.proto')],
    PROTO_OPTIONS,
  );
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    v1alpha1: { CSIDriverProvider: grpc.ServiceClientConstructor };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  return {
    provider: loaded.v1alpha1.CSIDriverProvider.service,
    health: loaded.grpc.health.v1.Health.service,
  };
}
