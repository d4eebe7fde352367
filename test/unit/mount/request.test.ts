import { ProviderError } from '../../../src/errors';
import { decodeMountRequest } from '../../../src/mount/request';

const raw = (overrides: Partial<Record<'attributes' | 'secrets' | 'permission', string>>) => ({
  attributes: '{"a":"b"}',
  secrets: '{}',
  targetPath: '/var/lib/kubelet/pods/x/volumes/y',
  permission: '420',
  currentObjectVersion: [],
  ...overrides,
});

function failure(overrides: Parameters<typeof raw>[0]): ProviderError {
  try {
    decodeMountRequest(raw(overrides));
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error('expected a failure');
}

describe('decodeMountRequest', () => {
  it('decodes attributes, secrets and the default permission', () => {
    expect(decodeMountRequest(raw({ secrets: '{"clientid":"x"}', permission: '384' }))).toEqual({
      attributes: { a: 'b' },
      secrets: { clientid: 'x' },
      targetPath: '/var/lib/kubelet/pods/x/volumes/y',
      defaultMode: 0o600,
    });
    expect(decodeMountRequest(raw({ secrets: '' })).secrets).toEqual({});
  });

  it('reads secrets "null" (what the driver sends for a volume without nodePublishSecretRef) as no secrets', () => {
    expect(decodeMountRequest(raw({ secrets: 'null' })).secrets).toEqual({});
    expect(decodeMountRequest(raw({ secrets: ' null\n' })).secrets).toEqual({});
  });

  it('rejects malformed JSON without quoting it (it may hold tokens and client secrets)', () => {
    const err = failure({ attributes: '{"csi.storage.k8s.io/serviceAccount.tokens": "eyJhbGciOi-canary' });
    expect(err.status).toBe('InvalidArgument');
    expect(err.message).toContain('attributes is not valid JSON');
    expect(err.message).not.toContain('canary');
    expect(failure({ secrets: '{"clientsecret": s3cret-canary}' }).message).not.toContain('canary');
  });

  it.each([
    ['an array', '["a"]', 'must be a JSON object'],
    ['a non-string value', '{"a": 1}', 'key "a" must be a string, not a number'],
    ['null', 'null', 'must be a JSON object'],
  ])('rejects attributes that are %s', (_name, attributes, fragment) => {
    expect(failure({ attributes }).message).toContain(fragment);
  });

  it.each(['', 'rw', '-1', '4.5', '99999'])('rejects the permission %p', (permission) => {
    expect(failure({ permission }).message).toContain('MountRequest.permission');
  });
});
