/**
 * `csi-provider-azure check --probe`: after a class passed the mount's parser, gets its identity's token and proves
 * each object's access with the mount's own credential, Key Vault reader, retries and error messages, then names what
 * failed: token, permission, network, not found or vault outage. Run inside a provider pod, it uses the pod's network,
 * proxy and IMDS exactly as a mount does.
 *
 * No value is printed. Keys and certificates are proven with the very read a mount makes, which returns only public
 * material (a key's public JWK, a certificate's DER). A secret's access ("get" on secrets) can only be proven by
 * reading it: its listing needs another permission, so a metadata call would prove the wrong thing. The value is read
 * and dropped unused at once (JavaScript strings cannot be overwritten in place; it is never decoded, converted,
 * written or printed).
 *
 * Identities that exist only in a pod's context are not faked: workload identity and identity binding need the pod's
 * service account token, aad-pod-identity answers for a pod, and a service principal's secret is in the pod's
 * nodePublishSecretRef Secret (which the provider may not read; the operator can hand it over on stdin).
 */
import { readFileSync } from 'node:fs';
import type { TokenCredential } from '@azure/core-auth';
import { isRestError } from '@azure/core-rest-pipeline';
import { ProviderError } from '../errors';
import { boundedHttpErrorIn } from '../identity/bounded-http';
import { TokenRequestError } from '../identity/token-errors';
import type { Cloud } from '../spec/clouds';
import { AttemptTimeoutError } from '../keyvault/retry';
import { mapBounded } from '../mount/concurrency';
import { describeObject } from '../mount/objects';
import type { VaultReader } from '../spec/ports';
import type { MountSpec, ObjectSpec } from '../spec/types';
import { selectVersionHistory } from '../mount/version-history';
import { scrub } from '../observability/scrub';
import { untilAborted } from '../util/abort';
import { parseCommandLine, type ProviderConfig } from './flags';
import { createAzureAccess, type AzureAccess } from './azure-access';

/** What went wrong, in the words of the managed-identity operations guidance; "ok" and "skipped" are not failures. */
export type ProbeOutcome = 'ok' | 'skipped' | 'policy' | 'token' | 'permission' | 'network' | 'not found' | 'vault outage' | 'unusable' | 'error';

export interface ProbeLine {
  /** `secret "db" in Key Vault "kv"`, or `identity` for a class-wide result. */
  subject: string;
  outcome: ProbeOutcome;
  message: string;
}

export interface ProbeOptions {
  /** Longest wait for one token or one object (retries included). */
  timeoutMs: number;
  /** The running provider's flags: cloud, user agent, token proxy, cloud file directory, per-vault bound. */
  provider: ProviderConfig;
  env: NodeJS.ProcessEnv;
  /** The provider's admission of a mount (its node identity policy); a refusal ends the class's probe, as a mount's. */
  admit?: (spec: MountSpec) => Promise<void>;
}

/** Objects of one class probed at once: few, so a probe run never weighs on a vault that serves the node's mounts. */
const PARALLEL_OBJECTS = 4;

/** The Azure side a mount uses, built from the provider's flags and environment as main.ts builds it. */
export class Prober {
  private readonly azure: AzureAccess;

  constructor(private readonly options: ProbeOptions) {
    // The token is kept between its request and the reads, even where the provider runs without a credential cache.
    const credentialCacheSize = options.provider.credentialCacheSize || 1;
    this.azure = createAzureAccess(options.provider, options.env, { userAgentSuffix: 'check', credentialCacheSize });
  }

  /** One line per object (or one for the class when its identity cannot be probed or gets no token). */
  async probe(spec: MountSpec, identityFromPod: string | undefined): Promise<ProbeLine[]> {
    if (identityFromPod) return [{ subject: 'identity', outcome: 'skipped', message: identityFromPod }];
    if (spec.objects.length === 0) return [{ subject: 'objects', outcome: 'skipped', message: 'the class names no object' }];
    try {
      await this.options.admit?.(spec);
    } catch (err) {
      return [{ subject: 'identity', outcome: 'policy', message: messageOf(err) }];
    }

    let cloud: Cloud;
    try {
      cloud = await this.azure.vaults.cloudOf(spec);
    } catch (err) {
      return [{ subject: 'cloud', outcome: 'error', message: messageOf(err) }];
    }
    const resolved = this.azure.credentials.resolve(spec.identity, cloud, spec.tenantId);
    const token = await this.acquireToken(resolved.credential, cloud);
    if (token) return [{ subject: 'identity', outcome: 'token', message: `${resolved.description}: ${token}` }];

    // The token is now in the credential's cache: the readers below use it, as a mount's would.
    const readers = new Map<string, Promise<VaultReader>>();
    const readerFor = (vaultName: string): Promise<VaultReader> => {
      const key = vaultName.toLowerCase();
      let reader = readers.get(key);
      if (!reader) {
        reader = this.azure.vaults.open(vaultName === spec.vaultName ? spec : { ...spec, vaultName });
        readers.set(key, reader);
      }
      return reader;
    };
    // Each object has its own deadline; none aborts the others.
    const never = new AbortController().signal;
    return mapBounded(spec.objects, PARALLEL_OBJECTS, never, async (object) => {
      const vaultName = object.vaultName || spec.vaultName;
      const subject = `${describeObject(object)} in Key Vault "${vaultName}"`;
      const signal = AbortSignal.timeout(this.options.timeoutMs);
      try {
        // The reader ends its own wait at the deadline, saying what it was still waiting for.
        const how = await proveAccess(await readerFor(vaultName), object, signal);
        return { subject, outcome: 'ok', message: how };
      } catch (err) {
        if (err instanceof ProviderError && err.status === 'Cancelled' && err.message.startsWith('still retrying')) {
          return { subject, outcome: classify(err), message: `${messageOf(err)} (gave up at --probe-timeout)` };
        }
        if (signal.aborted) {
          const within = `within ${this.options.timeoutMs / 1000}s (--probe-timeout)`;
          // The reader's words for what it was still waiting on, when it had any: a token, or the vault's answer.
          if (err instanceof ProviderError && err.status === 'Cancelled' && err.message.includes('waiting for a token')) {
            return { subject, outcome: 'token', message: `${messageOf(err)} ${within}` };
          }
          return {
            subject,
            outcome: 'network',
            message: `no answer from Key Vault "${vaultName}" ${within}: check network policies, the vault's firewall, ` +
              'DNS and any HTTPS_PROXY',
          };
        }
        const outcome = classify(err);
        if (outcome === 'not found' && object.optional) {
          return { subject, outcome: 'ok', message: `${messageOf(err)}; it is optional, so mounts go on without its file` };
        }
        return { subject, outcome, message: messageOf(err) };
      }
    });
  }

  close(): void {
    this.azure.connections.destroy();
  }

  /** undefined when a token came; else why not (never the token, never what was sent). */
  private async acquireToken(credential: TokenCredential, cloud: Cloud): Promise<string | undefined> {
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    try {
      // The scope Key Vault's challenge names; the credential already holds the class's tenant.
      const token = await untilAborted(credential.getToken(`${cloud.keyVaultResource}/.default`, { abortSignal: signal }), signal);
      return token ? undefined : 'the credential returned no token';
    } catch (err) {
      if (signal.aborted) return `the token endpoint did not answer within ${this.options.timeoutMs / 1000}s (--probe-timeout)`;
      if (err instanceof TokenRequestError) return scrub(`${err.reason}${err.fix ? `: ${err.fix}` : ''}`);
      return messageOf(err);
    }
  }
}

/**
 * The reads a mount of this object makes, minus the conversion: a version history lists first (its own permission),
 * then reads the newest selected version. Returns how access was proven.
 */
async function proveAccess(reader: VaultReader, object: ObjectSpec, signal: AbortSignal): Promise<string> {
  let version = object.version;
  let listed = '';
  if (object.versionHistory > 1) {
    const versions = await reader.listVersions(object.type, object.name, signal);
    const { versions: selected, warning } = selectVersionHistory(object, versions, reader.vaultName);
    if (warning) throw new ProviderError('NotFound', warning);
    version = selected[0]!;
    listed = `versions listed (${selected.length} selected), `;
  }
  switch (object.type) {
    case 'secret': {
      // Only a read proves "get" on a secret; the value is dropped here, unread.
      const secret = await reader.getSecret(object.name, version, signal);
      return `${listed}readable (version ${secret.version}; the value was read and discarded, not shown)`;
    }
    case 'key': {
      const key = await reader.getKey(object.name, version, signal);
      return `${listed}readable (version ${key.version}; public key only)`;
    }
    case 'cert': {
      const cert = await reader.getCertificate(object.name, version, signal);
      return `${listed}readable (version ${cert.version}; public certificate only)`;
    }
  }
}

/** Which failure class a read's error belongs to, from its cause (status, transport failure), not its words. */
export function classify(err: unknown): ProbeOutcome {
  if (!(err instanceof ProviderError)) return 'error';
  if (err instanceof TokenRequestError) return 'token';
  const cause = causeChain(err);
  const rest = cause.find(isRestError);
  switch (err.status) {
    case 'NotFound':
      return 'not found';
    case 'PermissionDenied':
      // The vault's firewall answers 403 too: that is the network path, not a role.
      return rest && /client address is not authorized/i.test(rest.message) ? 'network' : 'permission';
    case 'Unauthenticated':
      // IMDS or Entra ID refused, or the vault rejected the token (another tenant's, a deleted identity's).
      return 'token';
    case 'ResourceExhausted':
      return 'vault outage';
    case 'Unavailable': {
      if (rest?.statusCode !== undefined && (rest.statusCode >= 500 || rest.statusCode === 429)) return 'vault outage';
      if (cause.some((c) => c instanceof AttemptTimeoutError) || boundedHttpErrorIn(err) || rest) return 'network';
      return 'token';
    }
    case 'Cancelled':
      // Still retrying at the deadline: what kept failing decides.
      if (rest?.statusCode !== undefined && (rest.statusCode >= 500 || rest.statusCode === 429)) return 'vault outage';
      return 'network';
    case 'FailedPrecondition':
      return 'unusable';
    default:
      return 'error';
  }
}

function causeChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e: unknown = err; e && chain.length < 8; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

/** Our own messages carry no secret; scrub() guards against anything token-shaped all the same. */
function messageOf(err: unknown): string {
  if (err instanceof ProviderError) return scrub(err.message);
  return `unexpected failure (${err instanceof Error ? err.name : typeof err})`;
}

/**
 * The running provider's flags, so the probe acts as its mounts do: given after `--`, or else read from the provider
 * process of this container (PID 1 in the provider's image, whose entrypoint is the provider itself). Undefined when
 * neither is there (then the defaults apply).
 */
export function providerFlagsOf(cmdlineFile: string): string[] | undefined {
  let raw: string;
  try {
    raw = readFileSync(cmdlineFile, 'utf8');
  } catch {
    return undefined;
  }
  const argv = raw.split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
  const script = argv.findIndex((a) => /(^|\/)csi-provider-azure(\.js)?$/.test(a));
  if (script < 0 || argv[script + 1] === 'check') return undefined;
  return argv.slice(script + 1).filter((a) => a !== '');
}

/** The provider's configuration from its flags; a message when they do not parse. */
export function providerConfigOf(flags: readonly string[]): ProviderConfig | string {
  const parsed = parseCommandLine(flags);
  if (parsed.kind === 'error') return `the provider flags do not parse: ${parsed.message.split('\n')[0]!}`;
  if (parsed.kind === 'version') return 'the provider flags ask for --version';
  return parsed.config;
}
