import { ProviderError } from '../errors';
import type { Logger } from '../observability/logger';
import { mapBounded } from './concurrency';
import { ParameterParser } from './off-thread';
import { fetchObject, type ContentOptions, type FetchedObject } from './fetch-object';
import { describeObject, filesOf, objectId, shadowedWarning } from './objects';
import { POD_NAME, POD_NAMESPACE, SECRET_PROVIDER_CLASS } from './parameters';
import { FilePathRegistry } from './paths';
import type { ProviderMetrics } from '../observability/metrics';
import type { MountHooks, VaultAccess, VaultReader } from '../spec/ports';
import { decodeMountRequest, type RawMountRequest } from './request';
import { expandSelections } from './selected-secrets';
import type { MountSpec, ObjectSpec } from '../spec/types';

export interface MountOptions extends ContentOptions {
  /** `--cloud-name`, for SecretProviderClasses without cloudName. */
  defaultCloudName: string;
  /** Objects fetched at once within one mount. */
  maxParallelFetches: number;
  /** The longest cacheTTL a SecretProviderClass may set; absent = the Key Vault value cache is off. */
  maxCacheTtlMs?: number;
  /** The Kubernetes-aware features that are on; none by default. */
  hooks?: MountHooks;
}

export interface MountFile {
  path: string;
  mode: number;
  contents: Buffer;
}

export interface MountResult {
  files: MountFile[];
  objectVersions: Array<{ id: string; version: string }>;
}

/** The driver rejects responses above its receive limit (4 MiB by default, `--max-call-recv-msg-size`). */
const DRIVER_DEFAULT_RECEIVE_LIMIT = 4 * 1024 * 1024;
/**
 * The object version an optional object that Key Vault does not have is reported with: the driver stores it with the
 * others, so a later mount (and the rotation reconciler) sees the object go missing and come back. Key Vault versions
 * are 32 hex digits, so it is never a real one.
 */
export const OPTIONAL_NOT_FOUND_VERSION = 'not-found';
/** Above this, syncing the volume to a Kubernetes Secret fails (etcd's object size limit). */
const SECRET_SYNC_LIMIT = 1024 * 1024;

/**
 * One Mount, start to end: decode and validate everything first (no network), then fetch every object, convert it,
 * and return all files or fail whole. Logs one line per mount.
 */
export class MountService {
  private readonly parser = new ParameterParser();

  constructor(
    private readonly vaults: VaultAccess,
    private readonly options: MountOptions,
    private readonly logger: Logger,
    private readonly metrics?: ProviderMetrics,
  ) {}

  async mount(raw: RawMountRequest, signal: AbortSignal): Promise<MountResult> {
    const started = performance.now();
    let spec: MountSpec | undefined;
    let attributes: Record<string, string> | undefined;
    try {
      const request = decodeMountRequest(raw);
      attributes = request.attributes;
      const hooks = this.options.hooks;
      const prepared = hooks?.prepare ? await hooks.prepare(request.attributes, request.secrets, signal) : request.attributes;
      // Off the main thread when large (off-thread.ts): a hostile objects text must not stall the node's other mounts.
      const parsed = await this.parser.parse(prepared, request.secrets, {
        cloudName: this.options.defaultCloudName,
        ...(this.options.maxCacheTtlMs ? { maxCacheTtlMs: this.options.maxCacheTtlMs } : {}),
      });
      spec = request.targetPath ? { ...parsed, targetPath: request.targetPath } : parsed;
      if (hooks?.admit) await hooks.admit(spec, signal);
      const result = await this.fetchAll(spec, request.defaultMode, signal);
      hooks?.succeeded?.(attributes, spec);
      // At -v=2 and above: every rotation of every pod mounts again, and a line each at the default would flood.
      this.logger.debug(
        {
          ...mountFields(spec),
          objects: spec.objects.length,
          files: result.files.length,
          // Driver v1.5's rotation reconciler sends the versions it holds; v1.6 (kubelet's republish) sends none.
          currentObjectVersions: raw.currentObjectVersion.length,
          durationMs: since(started),
          result: 'ok',
        },
        'mount succeeded',
      );
      return result;
    } catch (err) {
      const error = this.asProviderError(err, signal);
      // An error line ("E…" in klog text), whatever the cause: a pod is left without its files.
      this.logger.error(
        {
          ...(spec ? mountFields(spec) : attributes ? podFields(attributes) : {}),
          objects: spec?.objects.length,
          durationMs: since(started),
          result: error.status,
          err: error.message,
        },
        'mount failed',
      );
      if (attributes) this.options.hooks?.failed?.(attributes, spec, error);
      throw error;
    }
  }

  private async fetchAll(spec: MountSpec, defaultMode: number, signal: AbortSignal): Promise<MountResult> {
    for (const warning of spec.warnings) this.logger.warn(mountFields(spec), warning);
    if (spec.objects.length === 0) return { files: [], objectVersions: [] };

    // One reader per vault the objects name (the class's, and each object's own keyvaultName), all with the class's
    // identity and cloud: each vault keeps its own reader, request bound and shared reads, as for any other mount.
    const readers = new Map<string, Promise<VaultReader>>();
    const readerFor = (vaultName: string): Promise<VaultReader> => {
      let reader = readers.get(vaultName.toLowerCase());
      if (!reader) {
        reader = this.vaults.open(vaultName === spec.vaultName ? spec : { ...spec, vaultName }, signal);
        readers.set(vaultName.toLowerCase(), reader);
      }
      return reader;
    };
    // Entries that select secrets by prefix, pattern or tags become the secrets they select (one listing each).
    const selected = await expandSelections(spec.objects, (o) => readerFor(o.vaultName || spec.vaultName), this.options.maxParallelFetches, signal);
    for (const note of selected.notes) this.logger.debug(mountFields(spec), note);
    const objects = selected.objects;
    const fetched = await mapBounded(objects, this.options.maxParallelFetches, signal, async (object, objectSignal) =>
      this.fetchOne(await readerFor(object.vaultName || spec.vaultName), object, spec, objectSignal),
    );

    const files = new Map<string, MountFile>();
    const objectVersions: MountResult['objectVersions'] = [];
    const paths = new FilePathRegistry();
    const warnings: string[] = [...selected.warnings];
    /** Paths of separate .crt/.key files, known only now (clashes between the others were reported at parse time). */
    const separateFiles = new Set<string>();
    fetched.forEach((result, i) => {
      const object = objects[i]!;
      warnings.push(...result.warnings);
      const planned = new Set(filesOf(object));
      for (const file of result.files) {
        // A path written twice keeps the later file, as the driver would.
        const separate = !planned.has(file.path);
        const earlier = paths.claim(file.path, describeObject(object));
        if (earlier && (separate || separateFiles.has(file.path))) {
          warnings.push(shadowedWarning(file.path, earlier, describeObject(object)));
        }
        if (separate) separateFiles.add(file.path);
        files.delete(file.path);
        files.set(file.path, { path: file.path, mode: file.mode ?? object.filePermission ?? defaultMode, contents: file.contents });
      }
      objectVersions.push(...result.versions);
    });
    objectVersions.push(...selected.versions);
    for (const warning of warnings) this.logger.warn(mountFields(spec), warning);
    if (objectVersions.length === 0) {
      // The driver fails a response without object versions ("missing object versions"): say why instead.
      throw new ProviderError(
        'NotFound',
        `no object of the SecretProviderClass produced a file, so the driver would fail the mount: ${warnings.join('; ')}`,
      );
    }
    const totalBytes = [...files.values()].reduce((sum, f) => sum + f.contents.length, 0);
    if (totalBytes > DRIVER_DEFAULT_RECEIVE_LIMIT) {
      this.logger.warn(
        { ...mountFields(spec), bytes: totalBytes },
        'mount content exceeds the driver\'s default 4 MiB receive limit: raise the driver\'s --max-call-recv-msg-size or split the SecretProviderClass',
      );
    } else if (totalBytes > SECRET_SYNC_LIMIT) {
      this.logger.debug({ ...mountFields(spec), bytes: totalBytes }, 'mount content exceeds 1 MiB: it cannot be synced to a Kubernetes Secret');
    }
    return { files: [...files.values()], objectVersions };
  }

  /**
   * One object's files. An optional object is left out only when Key Vault answered 404 (the secret, key, certificate
   * or version does not exist): a 401, 403, 429 or 5xx says nothing about whether it exists, and mounting without it
   * then would hide an outage or a lost permission behind a missing file, so those still fail the mount.
   */
  private async fetchOne(reader: VaultReader, object: ObjectSpec, spec: MountSpec, signal: AbortSignal): Promise<FetchedObject> {
    try {
      return await fetchObject(reader, object, this.options, signal);
    } catch (err) {
      if (!object.optional || !(err instanceof ProviderError) || err.status !== 'NotFound' || signal.aborted) throw err;
      this.metrics?.countOptionalObjectSkipped(object.type);
      this.logger.warn(
        { ...mountFields(spec), object: describeObject(object) },
        `${describeObject(object)} is optional and was not found in Key Vault "${object.vaultName || spec.vaultName}": ` +
          'the mount goes on without its file',
      );
      return { files: [], versions: [{ id: objectId(object), version: OPTIONAL_NOT_FOUND_VERSION }], warnings: [] };
    }
  }

  /** Every failure leaves as a ProviderError; an abort says whether the deadline passed or the driver cancelled. */
  private asProviderError(err: unknown, signal: AbortSignal): ProviderError {
    if (signal.aborted) {
      // The deadline or the driver's cancel is the cause; what was still in flight is the useful detail.
      const reason: unknown = signal.reason;
      if (reason instanceof ProviderError) {
        if (err instanceof ProviderError && err.status === 'Cancelled' && err !== reason) {
          return new ProviderError(reason.status, `${reason.message}: ${err.message}`, { cause: err });
        }
        return reason;
      }
      if (err instanceof ProviderError) return err;
      return new ProviderError('Cancelled', 'the mount was cancelled by the driver before it completed', { cause: err });
    }
    if (err instanceof ProviderError) return err;
    // Not an error we made: its text is unknown territory, so it goes to the log (at error level), not to the pod.
    this.logger.error({ err }, 'unexpected error in mount');
    return new ProviderError('Internal', 'internal error in the provider: see the provider logs', { cause: err });
  }
}

function mountFields(spec: MountSpec): Record<string, string> {
  return {
    pod: spec.pod.name,
    namespace: spec.pod.namespace,
    secretProviderClass: spec.secretProviderClass,
    vault: spec.vaultName,
    identity: spec.identity.mode,
  };
}

/** The pod's coordinates straight from the attributes, for a mount whose parameters did not parse. */
function podFields(attributes: Record<string, string>): Record<string, string | undefined> {
  return {
    pod: attributes[POD_NAME],
    namespace: attributes[POD_NAMESPACE],
    secretProviderClass: attributes[SECRET_PROVIDER_CLASS],
  };
}

function since(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
