import type { Agent } from 'node:http';
import type { CertificateClient } from '@azure/keyvault-certificates';
import type { KeyClient } from '@azure/keyvault-keys';
import type { SecretClient } from '@azure/keyvault-secrets';
import type { TokenCredential } from '@azure/core-auth';
import type { HttpClient, PipelinePolicy } from '@azure/core-rest-pipeline';
import { boundedHttpClient } from '../identity/bounded-http';
import { ProviderError } from '../errors';
import type { IdentityMode, ProviderMetrics } from '../observability/metrics';
import { isRenewable } from '../identity/caching-credential';
import type { FetchedCertificate, FetchedKey, FetchedSecret, ListedSecret, ListedVersion, ObjectMetadata, VaultReader } from '../spec/ports';
import type { ObjectType } from '../spec/types';
import { describeRead, toProviderError, type ReadContext } from './errors';
import { keyVaultMetricsPolicy } from './metrics-policy';
import { DEFAULT_RETRY_POLICY, runWithRetries, type RetryProgress } from './retry';
import { SharedReads, type SharedRead } from './shared-reads';
import type { VaultGate } from './vault-gate';
import { abortError, untilAborted } from '../util/abort';
import { restPipeline } from '../util/rest-pipeline';

export interface ReaderOptions {
  userAgentPrefix: string;
  /** The process's keep-alive connections for this vault (shared by every reader of it). */
  agent: Agent;
  /** Admission to this vault, shared by every reader of it (all identities). */
  gate: VaultGate;
  /** Receives the duration and outcome of every HTTP request to Key Vault; none recorded when absent. */
  metrics?: ProviderMetrics;
  /**
   * What sits between the node and the vault (an HTTPS proxy), for messages about answers that did not come from it.
   */
  intermediary?: string;
  /** The identity mode, for the token rejection count. */
  mode?: IdentityMode;
  /** Who issues this identity's tokens ("the node's managed identity endpoint (IMDS)"), for deadline messages. */
  tokenEndpoint?: string;
}

/**
 * Key Vault answers are a few KB (a secret is at most 25 KB, a listing page 25 items); a body beyond this is not an
 * answer of Key Vault and is never buffered.
 */
export const KEY_VAULT_MAX_BODY_BYTES = 256 * 1024;
/**
 * The most pages one secret listing reads (Key Vault sends at most 25 secrets a page, and may send empty pages with a
 * nextLink), and the most secrets it keeps: a vault of thousands of secrets fails the selection instead of costing
 * hundreds of requests of the vault's shared budget at every mount and rotation.
 */
export const MAX_SECRET_LIST_PAGES = 80;
export const MAX_LISTED_SECRETS = 2000;

type ReadKind = ReadContext['objectType'];

/**
 * Reads one vault as one identity. Instances live in a process-wide cache (per vault and identity), so what they hold
 * serves every mount of that identity: the SDK clients (each remembers the vault's authentication challenge), and the
 * reads in flight, which concurrent mounts share. Every read goes through the vault's gate and is retried as
 * retry.ts describes; connections come from the process's keep-alive pool.
 */
export class KeyVaultReader implements VaultReader {
  private secrets?: SecretClient;
  private keys?: KeyClient;
  private certificates?: CertificateClient;
  private readonly shared = new SharedReads();
  /** Per SDK client: settles once its first request has been answered (and the vault's challenge is known). */
  private readonly challengeKnown = new Map<ReadKind, Promise<void>>();
  /** Bumped whenever the clients are rebuilt with a fresh token; a read renews only the generation it used. */
  private generation = 0;
  /** Token requests of the SDK clients still unanswered, and since when the oldest waits (for deadline messages). */
  private tokensPending = 0;
  private tokenWaitSince = 0;
  /** What the SDK clients get: the identity's credential, watched for how long token requests take. */
  private readonly watchedCredential: TokenCredential;

  constructor(
    readonly vaultName: string,
    private readonly vaultUrl: string,
    private readonly credential: TokenCredential,
    private readonly identityDescription: string,
    private readonly options: ReaderOptions,
  ) {
    this.watchedCredential = {
      getToken: async (scopes, getTokenOptions) => {
        if (this.tokensPending++ === 0) this.tokenWaitSince = Date.now();
        try {
          return await this.credential.getToken(scopes, getTokenOptions);
        } finally {
          this.tokensPending--;
        }
      },
    };
  }

  async getSecret(name: string, version: string, signal: AbortSignal): Promise<FetchedSecret> {
    return this.read('secret', name, version, signal, async (abortSignal) => {
      // The client is taken per attempt: a rejected token rebuilds it (see renewToken).
      const secret = await (await this.secretClient()).getSecret(name, { version: version || undefined, abortSignal });
      return {
        // A secret without a value cannot be written; Key Vault always returns one for an enabled secret.
        value: secret.value ?? '',
        version: secret.properties.version ?? version,
        contentType: secret.properties.contentType,
        certificateKeyId: secret.properties.certificateKeyId,
        metadata: metadataOf(secret.properties),
      };
    });
  }

  async getKey(name: string, version: string, signal: AbortSignal): Promise<FetchedKey> {
    return this.read('key', name, version, signal, async (abortSignal) => {
      const key = await (await this.keyClient()).getKey(name, { version: version || undefined, abortSignal });
      if (!key.key) throw this.missing('key', name, 'has no key material');
      const { kty, crv, n, e, x, y } = key.key;
      return { jwk: { kty, crv, n, e, x, y }, version: key.properties.version ?? version, metadata: metadataOf(key.properties) };
    });
  }

  async getCertificate(name: string, version: string, signal: AbortSignal): Promise<FetchedCertificate> {
    return this.read('certificate', name, version, signal, async (abortSignal) => {
      const client = await this.certificateClient();
      const certificate = version
        ? await client.getCertificateVersion(name, version, { abortSignal })
        : await client.getCertificate(name, { abortSignal });
      if (!certificate.cer) throw this.missing('certificate', name, 'has no certificate (cer) content yet');
      return { cer: certificate.cer, version: certificate.properties.version ?? version, metadata: metadataOf(certificate.properties) };
    });
  }

  async listVersions(type: ObjectType, name: string, signal: AbortSignal): Promise<ListedVersion[]> {
    const kind = READ_KIND[type];
    const pages = async (options: { abortSignal: AbortSignal }): Promise<AsyncIterableIterator<Array<ListedProperties>>> => {
      switch (type) {
        case 'secret':
          return (await this.secretClient()).listPropertiesOfSecretVersions(name, options).byPage();
        case 'key':
          return (await this.keyClient()).listPropertiesOfKeyVersions(name, options).byPage();
        case 'cert':
          return (await this.certificateClient()).listPropertiesOfCertificateVersions(name, options).byPage();
      }
    };
    try {
      return await this.read(kind, name, '', signal, async (abortSignal) => collectPages(await pages({ abortSignal }), abortSignal, listed), 'versions');
    } catch (err) {
      // Reading one version needs "get"; listing needs "list" too, which access policies grant separately.
      if (err instanceof ProviderError && err.status === 'PermissionDenied') {
        throw new ProviderError(
          'PermissionDenied',
          `${err.message}. objectVersionHistory lists the versions of ${kind} "${name}", so with access policies the ` +
            `identity also needs the list permission for ${kind}s`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  async listSecrets(signal: AbortSignal): Promise<ListedSecret[]> {
    return this.read('secret', '', '', signal, async (abortSignal) => {
      const pages = (await this.secretClient()).listPropertiesOfSecrets({ abortSignal }).byPage({ maxPageSize: 25 });
      const secrets: ListedSecret[] = [];
      for (let page = 0; ; page++) {
        if (abortSignal.aborted) throw abortError(abortSignal);
        if (page >= MAX_SECRET_LIST_PAGES || secrets.length > MAX_LISTED_SECRETS) {
          throw new ProviderError(
            'FailedPrecondition',
            `Key Vault "${this.vaultName}" has more secrets than a selection lists (more than ${secrets.length} in ` +
              `${page} pages; the bound is ${MAX_LISTED_SECRETS} secrets or ${MAX_SECRET_LIST_PAGES} pages): name the ` +
              'objects one by one, or keep the selected secrets in a vault of their own',
          );
        }
        const next = await untilAborted(pages.next(), abortSignal);
        if (next.done) return secrets;
        for (const p of next.value) secrets.push(listedSecret(p));
      }
    }, 'list');
  }

  /**
   * One read, shared with the mounts already waiting for the same one (key: operation, object, version; names are
   * case-insensitive in Key Vault), retried through the vault's gate, failing as a ProviderError that names it.
   */
  private read<T>(
    kind: ReadKind,
    name: string,
    version: string,
    signal: AbortSignal,
    attempt: (signal: AbortSignal) => Promise<T>,
    operation: 'get' | 'versions' | 'list' = 'get',
  ): Promise<T> {
    const key = `${operation}/${kind}/${name.toLowerCase()}/${version.toLowerCase()}`;
    // Only a read that starts a request builds its context; mounts joining one in flight just wait.
    const start = (): SharedRead<T> => {
      const ctx: ReadContext = {
        vaultName: this.vaultName,
        vaultUrl: this.vaultUrl,
        objectType: kind,
        objectName: name,
        version,
        identity: this.identityDescription,
        ...(operation === 'list' ? { listing: true } : {}),
      };
      const progress: RetryProgress = { attempts: 0, queued: false, lastFailure: undefined };
      return {
        run: async (sharedSignal) => {
          let openChallenge: (() => void) | undefined;
          try {
            openChallenge = await this.challengeTurn(kind, sharedSignal);
            const open = openChallenge;
            // The first read of a new client lets the others go once its first attempt is answered, not after retries.
            const send = open ? (s: AbortSignal) => attempt(s).finally(open) : attempt;
            const retry = { signal: sharedSignal, gate: this.options.gate, policy: DEFAULT_RETRY_POLICY, progress };
            const generation = this.generation;
            try {
              return await runWithRetries(send, retry);
            } catch (err) {
              // 401 after the challenge: Key Vault no longer accepts the cached token (revoked, identity re-created,
              // clock skew). Drop it once and read again with a fresh one, instead of failing for the token's lifetime.
              if (!restPipeline().isRestError(err) || err.statusCode !== 401 || !isRenewable(this.credential)) throw err;
              this.renewToken(generation);
              return await runWithRetries(attempt, retry);
            }
          } catch (err) {
            if (sharedSignal.aborted) throw abortError(sharedSignal);
            const error = toProviderError(err, ctx);
            if (progress.attempts <= 1) throw error;
            throw new ProviderError(error.status, `${error.message} (gave up after ${progress.attempts} attempts)`, { cause: err });
          } finally {
            openChallenge?.();
          }
        },
        // A mount whose deadline passes says what it was waiting on: what the vault kept answering while retrying,
        // the node's own bound if the read never got on the wire, or else the vault's answer.
        whyWaiting: () => {
          if (progress.lastFailure) {
            const last = toProviderError(progress.lastFailure.error, ctx).message;
            // The cause says what kept failing (a status, a reset) to whoever classifies the failure.
            return new ProviderError('Cancelled', `still retrying after ${progress.attempts} attempts: ${last}`, {
              cause: progress.lastFailure.error,
            });
          }
          if (progress.queued) {
            const { limit } = this.options.gate;
            return new ProviderError(
              'Cancelled',
              `${describeRead(ctx)} was still waiting for one of the ${limit} request slots of Key Vault ` +
                `"${this.vaultName}" on this node (--max-requests-per-vault), all in use by other mounts`,
            );
          }
          if (this.tokensPending > 0) {
            // The read never reached the vault: the token endpoint is the one that did not answer.
            const endpoint = this.options.tokenEndpoint ?? 'the token endpoint';
            return new ProviderError(
              'Cancelled',
              `reading ${describeRead(ctx)} from Key Vault "${this.vaultName}" was still waiting for a token for ` +
                `${this.identityDescription} from ${endpoint}, which had not answered for ` +
                `${Math.round((Date.now() - this.tokenWaitSince) / 100) / 10}s`,
            );
          }
          return new ProviderError('Cancelled', `reading ${describeRead(ctx)} from Key Vault "${this.vaultName}" had no answer yet`);
        },
      };
    };
    return this.shared.read(key, signal, start, (hit) => this.options.metrics?.countCacheLookup('inflight_request', hit));
  }

  /**
   * A new SDK client does not know the vault's authentication challenge yet: its first request is answered 401, then
   * sent again with a token. If fifty reads started together on a new client, each would pay that 401. So the first
   * read of each client goes alone: it gets a function to call once answered; later reads wait until it is called.
   */
  private async challengeTurn(kind: ReadKind, signal: AbortSignal): Promise<(() => void) | undefined> {
    const known = this.challengeKnown.get(kind);
    if (known) {
      await untilAborted(known, signal);
      return undefined;
    }
    let open!: () => void;
    this.challengeKnown.set(kind, new Promise<void>((resolve) => (open = resolve)));
    return open;
  }

  /**
   * Drops the rejected token and the SDK clients that hold it (each client's authentication policy keeps its own copy),
   * once per generation however many reads saw the 401 together; the next request pays the challenge again.
   */
  private renewToken(generation: number): void {
    if (generation !== this.generation) return;
    this.generation++;
    if (isRenewable(this.credential)) this.credential.invalidate();
    this.secrets = undefined;
    this.keys = undefined;
    this.certificates = undefined;
    this.challengeKnown.clear();
    if (this.options.mode) this.options.metrics?.countTokenRejection(this.options.mode);
  }

  // Each Key Vault SDK is loaded on first use: the secrets one on the first mount (about 100 ms of CPU that would
  // otherwise delay the socket, under a 50m quota seconds), the key and certificate ones (each several MiB resident)
  // only on a node that mounts a key or certificate, as most SecretProviderClasses read only secrets.
  private async secretClient(): Promise<SecretClient> {
    if (!this.secrets) {
      const { SecretClient: Client } = await import('@azure/keyvault-secrets');
      this.secrets ??= new Client(this.vaultUrl, this.watchedCredential, this.clientOptions());
    }
    return this.secrets;
  }

  private async keyClient(): Promise<KeyClient> {
    if (!this.keys) {
      const { KeyClient: Client } = await import('@azure/keyvault-keys');
      this.keys ??= new Client(this.vaultUrl, this.watchedCredential, this.clientOptions());
    }
    return this.keys;
  }

  private async certificateClient(): Promise<CertificateClient> {
    if (!this.certificates) {
      const { CertificateClient: Client } = await import('@azure/keyvault-certificates');
      this.certificates ??= new Client(this.vaultUrl, this.watchedCredential, this.clientOptions());
    }
    return this.certificates;
  }

  private clientOptions(): {
    userAgentOptions: { userAgentPrefix: string };
    additionalPolicies: Array<{ policy: PipelinePolicy; position: 'perRetry' }>;
    agent: Agent;
    retryOptions: { maxRetries: number };
    httpClient: HttpClient;
  } {
    const metrics = this.options.metrics;
    return {
      httpClient: boundedHttpClient({
        endpoint: `Key Vault "${this.vaultName}"`,
        maxBodyBytes: KEY_VAULT_MAX_BODY_BYTES,
        requireJson: true,
        describeTransportErrors: false,
        // Every answer of Key Vault carries it; a 4xx/5xx without it and without JSON came from something in between.
        serviceHeader: 'x-ms-request-id',
        ...(this.options.intermediary ? { intermediary: this.options.intermediary } : {}),
      }),
      userAgentOptions: { userAgentPrefix: this.options.userAgentPrefix },
      additionalPolicies: metrics ? [{ policy: keyVaultMetricsPolicy(metrics), position: 'perRetry' }] : [],
      // Our keep-alive pool; the SDK's proxy policy leaves requests that already have an agent alone.
      agent: this.options.agent,
      // retry.ts retries instead (deadline-bound, Retry-After honoured, one vault-wide pause on throttling).
      retryOptions: { maxRetries: 0 },
    };
  }

  private missing(type: string, name: string, what: string): ProviderError {
    return new ProviderError('FailedPrecondition', `${type} "${name}" in Key Vault "${this.vaultName}" ${what}`);
  }
}

/** Object types as the error messages (and the RBAC role table) name them. */
const READ_KIND: Record<ObjectType, ReadContext['objectType']> = { secret: 'secret', key: 'key', cert: 'certificate' };

/** The fields of a listed version's properties that choosing a version needs (the SDKs' property types share them). */
interface ListedProperties {
  version?: string;
  enabled?: boolean;
  createdOn?: Date;
}

/** A listed secret's properties as the SDK maps them (no value, no kid: the listing has neither). */
function listedSecret(p: {
  name: string;
  enabled?: boolean;
  expiresOn?: Date;
  notBefore?: Date;
  tags?: Record<string, string>;
  managed?: boolean;
  contentType?: string;
}): ListedSecret {
  return {
    name: p.name,
    enabled: p.enabled !== false,
    expiresOn: p.expiresOn,
    notBefore: p.notBefore,
    tags: { ...(p.tags ?? {}) },
    managed: p.managed === true,
    contentType: p.contentType,
  };
}

function listed(properties: ListedProperties): ListedVersion {
  return { version: properties.version ?? '', enabled: properties.enabled !== false, createdOn: properties.createdOn };
}

/**
 * Reads every page of a version listing. The SDK passes the abort signal to the first page only (it follows nextLinks
 * without it), so the signal is checked before each page and raced against it: an aborted mount returns at once, and
 * the page still in flight is left to finish and be ignored.
 */
async function collectPages<P, T>(
  pages: AsyncIterableIterator<P[]>,
  signal: AbortSignal,
  map: (item: P) => T,
): Promise<T[]> {
  const items: T[] = [];
  for (;;) {
    if (signal.aborted) throw abortError(signal); // before asking for the next page, not after it arrived
    const page = await untilAborted(pages.next(), signal);
    if (page.done) return items;
    for (const item of page.value) items.push(map(item));
  }
}


/** What the SDKs' property objects (secret, key, certificate alike) say about a version besides its content. */
function metadataOf(p: {
  tags?: Record<string, string>;
  enabled?: boolean;
  createdOn?: Date;
  updatedOn?: Date;
  expiresOn?: Date;
  notBefore?: Date;
}): ObjectMetadata {
  return { tags: { ...(p.tags ?? {}) }, enabled: p.enabled, createdOn: p.createdOn, updatedOn: p.updatedOn, expiresOn: p.expiresOn, notBefore: p.notBefore };
}
