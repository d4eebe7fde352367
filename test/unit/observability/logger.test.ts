/**
 * The provider's log lines in the two layouts Kubernetes tooling reads: klog text (default) and the Kubernetes
 * component JSON (--log-format-json); verbosity gates; redaction.
 */
import { createLogger } from '../../../src/observability/logger';
import { formatKlogText, klogHeader, toKubernetesJson } from '../../../src/observability/klog-format';

function capture(json: boolean, verbosity = 0): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ json, verbosity, destination: { write: (line: string) => void lines.push(line) } });
  return { logger, lines };
}

const KLOG_LINE = /^([IWEF])(\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6}) +(\d+) ([^ \]]+:\d+)\] "(.*?)"(.*)\n$/;

describe('klog text layout (the default)', () => {
  it('writes the klog header, the quoted message and key=value pairs, one line per event', () => {
    const { logger, lines } = capture(false);
    logger.info({ endpoint: 'unix:///provider/azure.sock', objects: 3, ok: true }, 'serving the CSI driver');
    expect(lines).toHaveLength(1);
    const m = KLOG_LINE.exec(lines[0]!);
    expect(m).not.toBeNull();
    expect(m![1]).toBe('I');
    expect(Number(m![8])).toBe(process.pid);
    // The caller is this test file and the line of the call.
    expect(m![9]).toMatch(/^observability\/logger\.test\.ts:\d+$/);
    expect(m![10]).toBe('serving the CSI driver');
    expect(m![11]).toBe(' endpoint="unix:///provider/azure.sock" objects=3 ok=true');
  });

  it('starts failures with E and puts err first, so `grep ^E` finds them; newlines stay inside the line', () => {
    const { logger, lines } = capture(false);
    logger.error({ pod: 'shop-0', err: new Error('Key Vault said no\nsecond line') }, 'mount failed');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith('E')).toBe(true);
    expect(lines[0]).toMatch(/\] "mount failed" err="Key Vault said no\\nsecond line" pod="shop-0"\n$/);
    expect(lines[0]!.split('\n')).toHaveLength(2);
  });

  it('uses W for warnings and F for fatal', () => {
    const { logger, lines } = capture(false);
    logger.warn('careful');
    logger.fatal('gone');
    expect(lines.map((l) => l[0])).toEqual(['W', 'F']);
  });

  it('prints the time as klog does: month, day, local time to the microsecond', () => {
    const ts = new Date(2026, 11, 2, 1, 16, 37, 473).getTime() + 0.25;
    expect(klogHeader(50, ts, 1, 'mount/mount-service.js:64')).toBe('E1202 01:16:37.473250       1 mount/mount-service.js:64]');
  });

  it('formats structured values on one line', () => {
    expect(formatKlogText({ level: 30, ts: 0, msg: 'x', caller: 'a.js:1', flags: ['--a', '--b'], nested: { k: 'v' } }, 7)).toMatch(
      /\] "x" flags=\["--a","--b"\] nested=\{"k":"v"\}\n$/,
    );
  });
});

describe('Kubernetes JSON layout (--log-format-json)', () => {
  it('has ts (epoch ms), caller, msg and v for info', () => {
    const { logger, lines } = capture(true);
    const before = Date.now();
    logger.info({ port: 8989 }, 'serving health checks');
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.keys(record)).toEqual(['ts', 'caller', 'msg', 'v', 'port']);
    expect(record).toMatchObject({ msg: 'serving health checks', v: 0, port: 8989 });
    expect(record['ts'] as number).toBeGreaterThanOrEqual(before - 1);
    expect(record['ts'] as number).toBeLessThan(before + 60_000);
    expect(record['caller']).toMatch(/^observability\/logger\.test\.ts:\d+$/);
  });

  it('gives an error record err (its text) and no v', () => {
    const { logger, lines } = capture(true);
    logger.error({ err: new Error('denied'), pod: 'shop-0' }, 'mount failed');
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(record).toMatchObject({ msg: 'mount failed', err: 'denied', pod: 'shop-0' });
    expect(record).not.toHaveProperty('v');
    expect(record).not.toHaveProperty('level');
  });

  it('marks debug records v=2 and trace records v=5', () => {
    const { logger, lines } = capture(true, 5);
    logger.debug('d');
    logger.trace('t');
    expect(lines.map((l) => (JSON.parse(l) as { v: number }).v)).toEqual([2, 5]);
  });

  it('keeps the k8s order even for records made by hand', () => {
    expect(Object.keys(toKubernetesJson({ level: 30, ts: 1, msg: 'm', caller: 'c', a: 1 }))).toEqual(['ts', 'caller', 'msg', 'v', 'a']);
  });
});

describe('verbosity and redaction', () => {
  it('a successful mount (debug) shows from -v=2, not at the default', () => {
    for (const [verbosity, expected] of [
      [0, 0],
      [1, 0],
      [2, 1],
      [5, 1],
    ] as const) {
      const { logger, lines } = capture(false, verbosity);
      logger.debug({ pod: 'shop-0' }, 'mount succeeded');
      expect(lines).toHaveLength(expected);
    }
  });

  it('redacts secret-bearing fields in both layouts', () => {
    for (const json of [false, true]) {
      const { logger, lines } = capture(json);
      logger.info({ value: 'canary-secret', token: 'canary-token', nested: { clientSecret: 'canary-cs' } }, 'x');
      expect(lines[0]).not.toMatch(/canary/);
      expect(lines[0]).toContain('[redacted]');
    }
  });
});
