import { orderCertificateChain } from '../../../src/content/chain';
import { fixture, makeCert, makeChain, permutations, rsaKey, type TestCert } from './helpers';

const pems = (certs: TestCert[]) => certs.map((c) => c.pem);
const fixturePem = (name: string) => fixture(`${name}.crt`).toString('utf8');
const names = (ordered: string[], certs: TestCert[]) =>
  ordered.map((pem) => certs.find((c) => c.pem === pem)?.name ?? '?');
const stored = (certs: TestCert[], problem: string) => ({ certificates: pems(certs), complete: false, problem });
const orders = (certs: TestCert[]) => permutations(certs).map((p) => [p.map((c) => c.name).join(', '), p] as const);

describe('orderCertificateChain', () => {
  const three = makeChain(3); // leaf, int1, root — all with SKI and AKI
  const all3 = three.ordered;

  describe('3 certificates with key identifiers: every input order gives leaf → intermediate → root', () => {
    it.each(orders(all3))('%s', (_label, input) => {
      expect(orderCertificateChain(pems(input))).toEqual({ certificates: pems(all3), complete: true });
    });
  });

  describe('4 certificates, the leaf without SKI: always leaf → int2 → int1 → root', () => {
    const four = makeChain(4, { ski: false }, 3);
    it.each(orders(four.ordered))('%s', (_label, input) => {
      const result = orderCertificateChain(pems(input));
      expect(names(result.certificates, four.ordered)).toEqual(['leaf', 'int2', 'int1', 'root']);
      expect(result.complete).toBe(true);
    });
  });

  it('orders the OpenSSL 4-certificate fixture (leaf without SKI) from its stored order', () => {
    const stored = ['c4-leaf', 'c4-int1', 'c4-root', 'c4-int2'].map(fixturePem);
    const expected = ['c4-leaf', 'c4-int2', 'c4-int1', 'c4-root'].map(fixturePem);
    for (const input of permutations(stored)) {
      expect(orderCertificateChain(input)).toEqual({ certificates: expected, complete: true });
    }
  });

  it('orders a chain of mixed key types (EC CAs, RSA leaf)', () => {
    const expected = ['mixed-leaf', 'ec-int', 'ec-root'].map(fixturePem);
    const input = ['ec-root', 'mixed-leaf', 'ec-int'].map(fixturePem);
    expect(orderCertificateChain(input)).toEqual({ certificates: expected, complete: true });
  });

  // The reference links by key identifiers only; names never count, so without identifiers it keeps the stored order.
  describe('keeps the stored order where key identifiers are absent (names are not compared, as in the reference)', () => {
    const root = makeCert({ name: 'n-root', key: rsaKey(0), ca: true, ski: false, aki: false });
    const int = makeCert({ name: 'n-int', key: rsaKey(1), issuer: root, ca: true, ski: false, aki: false });
    const leaf = makeCert({ name: 'n-leaf', key: rsaKey(2), issuer: int, ski: false, aki: false });
    const partial = makeCert({ name: 'p-leaf', key: rsaKey(2), issuer: three.cas[1]!, ski: false, aki: false });
    it.each(orders([leaf, int, root]))('no identifiers at all: %s', (_label, input) => {
      expect(orderCertificateChain(pems(input))).toEqual(stored(input, 'incomplete'));
    });
    it('a leaf with neither SKI nor AKI under CAs that have them', () => {
      const input = [three.cas[0]!, partial, three.cas[1]!];
      expect(orderCertificateChain(pems(input))).toEqual(stored(input, 'incomplete'));
    });
  });

  it('does not link by name when the key identifiers disagree (a re-keyed CA with the same name)', () => {
    const oldRoot = makeCert({ name: 'root', key: rsaKey(5), ca: true });
    // three.leaf's issuer is "int1", signed by three's root; here only a same-named root with another key is present.
    const result = orderCertificateChain(pems([three.cas[1]!, oldRoot]));
    expect(result).toEqual(stored([three.cas[1]!, oldRoot], 'incomplete'));
  });

  describe('a missing intermediate keeps the stored order', () => {
    it.each([
      ['leaf, root', [three.leaf, three.cas[0]!]],
      ['root, leaf', [three.cas[0]!, three.leaf]],
    ])('%s', (_label, input) => {
      expect(orderCertificateChain(pems(input))).toEqual(stored(input, 'incomplete'));
    });
    it('4-certificate chain without int1', () => {
      const four = makeChain(4, { ski: false }, 3);
      const input = [four.ordered[3]!, four.ordered[0]!, four.ordered[1]!]; // root, leaf, int2
      expect(orderCertificateChain(pems(input))).toEqual(stored(input, 'incomplete'));
    });
  });

  it.each([
    ['empty', [], { certificates: [], complete: true }],
    ['a single leaf', [three.leaf], { certificates: [three.leaf.pem], complete: true }],
    ['a single self-signed root', [three.cas[0]!], { certificates: [three.cas[0]!.pem], complete: true }],
  ])('%s', (_label, input, expected) => {
    expect(orderCertificateChain(pems(input as TestCert[]))).toEqual(expected);
  });

  describe('a certificate stored twice: every copy is kept, in stored order', () => {
    const [leaf, int, root] = all3 as [TestCert, TestCert, TestCert];
    it('a root without AKI stored twice: the chain misses the second copy, so the stored order (as the reference)', () => {
      const rootNoAki = makeCert({ name: 'r', key: rsaKey(10), ca: true, aki: false });
      const intR = makeCert({ name: 'i', key: rsaKey(11), issuer: rootNoAki, ca: true });
      const leafR = makeCert({ name: 'l', key: rsaKey(12), issuer: intR });
      const input = [leafR, intR, rootNoAki, rootNoAki];
      expect(orderCertificateChain(pems(input))).toEqual(stored(input, 'incomplete'));
    });
    it('a root with AKI stored twice links to its own copy: the reference fails ("cycle"), we keep the stored order', () => {
      const input = [root, leaf, int, root, leaf];
      expect(orderCertificateChain(pems(input))).toEqual(stored(input, 'cycle'));
    });
    it('only two copies of a root: each issued the other, so there is no leaf (the reference fails), stored order', () => {
      expect(orderCertificateChain(pems([root, root]))).toEqual(stored([root, root], 'no-leaf'));
    });
  });

  it('keeps the stored order for two unrelated chains', () => {
    const other = makeChain(2, {}, 6);
    const input = [three.leaf, ...three.cas, other.leaf, other.cas[0]!];
    expect(orderCertificateChain(pems(input))).toEqual(stored(input, 'incomplete'));
  });

  it('terminates on mutually cross-signed CAs and keeps every certificate', () => {
    // A is issued by B and B by A (key identifiers point at each other); a leaf is issued by A.
    const aKey = rsaKey(7);
    const bKey = rsaKey(8);
    const bSelf = makeCert({ name: 'B', key: bKey, ca: true });
    const a = makeCert({ name: 'A', key: aKey, issuer: bSelf, ca: true });
    const b = makeCert({ name: 'B', key: bKey, issuer: a, ca: true });
    const leaf = makeCert({ name: 'x', key: rsaKey(9), issuer: a });
    for (const input of permutations([leaf, a, b])) {
      const result = orderCertificateChain(pems(input));
      expect([...result.certificates].sort()).toEqual(pems(input).sort());
    }
  });

  it('keeps the stored order when two certificates could have issued the same one', () => {
    // Two copies of the intermediate (same key and name, different serial): the leaf has two candidate issuers.
    const int2 = makeCert({ name: 'int1', key: three.cas[1]!.key, issuer: three.cas[0]!, ca: true });
    const input = [three.leaf, three.cas[1]!, int2, three.cas[0]!];
    expect(orderCertificateChain(pems(input))).toEqual(stored(input, 'incomplete'));
  });

  it('never throws, whatever it is given', () => {
    const junk = ['not a certificate', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', ''];
    for (const bad of junk) {
      const input = [three.leaf.pem, bad];
      expect(orderCertificateChain(input)).toEqual({ certificates: input, complete: false, problem: 'unreadable' });
    }
    // Every subset of every order of a 4-certificate chain plus an unrelated certificate.
    const four = makeChain(4, { ski: false }, 3);
    const pool = [...four.ordered, makeChain(2, {}, 6).leaf];
    for (let mask = 1; mask < 1 << pool.length; mask++) {
      const subset = pool.filter((_, i) => mask & (1 << i));
      const input = pems(subset.reverse());
      const result = orderCertificateChain(input);
      expect([...result.certificates].sort()).toEqual([...input].sort());
    }
  });
});
