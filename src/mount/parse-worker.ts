/**
 * The worker thread side of off-thread.ts: parses one mount's parameters (the pure, synchronous parseMountParameters)
 * and posts back the MountSpec, or the ProviderError's status and message. Holds no state between requests.
 */
import { parentPort } from 'node:worker_threads';
import { ProviderError } from '../errors';
import { parseMountParameters, type ParameterDefaults } from './parameters';

export interface ParseRequest {
  id: number;
  attributes: Record<string, string>;
  secrets: Record<string, string>;
  defaults: ParameterDefaults;
}

export type ParseReply =
  | { id: number; ok: true; spec: ReturnType<typeof parseMountParameters> }
  | { id: number; ok: false; status: ProviderError['status'] | undefined; message: string };

parentPort?.on('message', (request: ParseRequest) => {
  let reply: ParseReply;
  try {
    reply = { id: request.id, ok: true, spec: parseMountParameters(request.attributes, request.secrets, request.defaults) };
  } catch (err) {
    // Only our own errors carry a message meant for the pod; anything else is reported as internal by the caller.
    reply =
      err instanceof ProviderError
        ? { id: request.id, ok: false, status: err.status, message: err.message }
        : { id: request.id, ok: false, status: undefined, message: 'unexpected error while parsing the parameters' };
  }
  parentPort!.postMessage(reply);
});
