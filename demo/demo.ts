/**
 * `npm run demo`: the provider doing its main job with no Azure account. Starts local stand-ins for the node's IMDS
 * and for Key Vault (TLS, test CA), the real provider process on a unix socket, then sends the driver's Mount call for
 * a SecretProviderClass that uses the node's managed identity, and prints the files the driver would write: secrets,
 * a certificate (key and chain as PEM, and the certificate alone), then what a pod sees when the identity lacks a
 * role on a vault (403) and when a secret does not exist (404).
 */
import { startAzureStandIns } from '../test/support/azure-standins';
import { startProvider } from '../test/support/provider-process';

const SPC_OBJECTS = `array:
  - |
    objectName: db-password
    objectType: secret
  - |
    objectName: api-key
    objectType: secret
    objectAlias: config/api.key
    objectEncoding: base64
    filePermission: "0400"
  - |
    objectName: signing-salt
    objectType: secret
    objectVersion: VERSION
  - |
    objectName: shop-tls
    objectType: secret
    objectAlias: tls/shop.pem
  - |
    objectName: shop-tls
    objectType: cert
    objectAlias: tls/shop.crt
`;

const ONE_SECRET = (name: string): string => `array:\n  - |\n    objectName: ${name}\n    objectType: secret\n`;

/** A file's content for the console: text as a string, PEM as its block types, anything else as hex. */
function describeContent(contents: Buffer): string {
  const text = contents.toString('utf8');
  const blocks = [...text.matchAll(/^-----BEGIN ([A-Z ]+)-----$/gm)].map((m) => m[1]);
  if (blocks.length > 0) return `PEM: ${blocks.join(', ')}`;
  return /^[\x20-\x7e]*$/.test(contents.toString('latin1')) ? JSON.stringify(text) : `0x${contents.toString('hex')}`;
}

async function main(): Promise<void> {
  const azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'aks-node-pool-identity' } } });
  // -v=2: successful mounts are logged too (at the default only failures are).
  const provider = await startProvider({ env: azure.providerEnv(), args: ['-v=2'] }).catch(async (err: unknown) => {
    await azure.close();
    throw err;
  });
  try {
    const kv = azure.keyVault;
    kv.addVault('shop-kv', { allow: ['aks-node-pool-identity'] });
    kv.setSecret('shop-kv', 'db-password', 'correct-horse-battery-staple');
    kv.setSecret('shop-kv', 'api-key', Buffer.from('binary \u0000\u0001 api key').toString('base64'));
    const firstSalt = kv.setSecret('shop-kv', 'signing-salt', 'salt-v1');
    kv.setSecret('shop-kv', 'signing-salt', 'salt-v2');
    // A certificate created the Key Vault way: the certificate, its key and a backing secret (PFX) under one name.
    const tls = azure.pki.issueServerCert(['shop.contoso.example']);
    kv.setCertificate('shop-kv', 'shop-tls', tls.certPem, { privateKeyPem: tls.keyPem, chainPem: [azure.pki.caCertPem] });
    // A vault on which the node's identity has no role.
    kv.addVault('billing-kv', { allow: [] });
    kv.setSecret('billing-kv', 'invoice-signing-key', 'not for shop');

    const attributes = {
      'csi.storage.k8s.io/pod.name': 'shop-0',
      'csi.storage.k8s.io/pod.namespace': 'shop',
      'csi.storage.k8s.io/pod.uid': 'b1c2d3e4',
      'csi.storage.k8s.io/serviceAccount.name': 'shop',
      secretProviderClass: 'shop-secrets',
      useVMManagedIdentity: 'true',
      keyvaultName: 'shop-kv',
      tenantID: azure.tenantId,
      objects: SPC_OBJECTS.replace('VERSION', firstSalt),
    };
    console.log(`provider ${(await provider.client.version()).runtimeVersion} listening on ${provider.socketPath}`);
    console.log('\nSecretProviderClass parameters sent by the driver:');
    console.log(JSON.stringify(attributes, null, 2));

    const started = performance.now();
    const result = await provider.client.mount({ attributes, permission: '420' });
    const ms = (performance.now() - started).toFixed(1);
    console.log(`\nMount returned ${result.files.length} files in ${ms} ms (first mount: includes the IMDS token and the vault challenge):`);
    for (const file of result.files) {
      console.log(`  ${file.path.padEnd(16)} mode ${file.mode.toString(8).padStart(4, '0')}  ${describeContent(file.contents)}`);
    }
    console.log('\nobject versions (for rotation and SecretProviderClassPodStatus):');
    for (const v of result.objectVersion) console.log(`  ${v.id.padEnd(20)} ${v.version}`);

    const again = performance.now();
    await provider.client.mount({ attributes, permission: '420' });
    console.log(
      `\nA second mount (warm token, challenge already answered, connection through the proxy kept open) took ${(performance.now() - again).toFixed(1)} ms.`,
    );
    console.log(
      `IMDS token requests: ${azure.imds.tokenRequestCount()}; Key Vault requests: ${kv.requests.length}; ` +
        `TLS connections to the vault: ${kv.connectionCount()}; proxy tunnels: ${azure.proxy.tunnels.length}.`,
    );

    const failure = async (title: string, override: Record<string, string>): Promise<void> => {
      try {
        await provider.client.mount({ attributes: { ...attributes, ...override }, permission: '420' });
        console.log(`\n${title}: unexpectedly succeeded`);
      } catch (err) {
        const { code, details } = err as { code?: number; details?: string };
        console.log(`\n${title} (gRPC code ${code}; kubectl describe pod shows it as "… desc = <message>"):\n  ${details}`);
      }
    };
    await failure('A vault where the node identity has no role: 403, with the role to grant', {
      keyvaultName: 'billing-kv',
      objects: ONE_SECRET('invoice-signing-key'),
    });
    await failure('A secret that does not exist: 404', { objects: ONE_SECRET('db-pasword') });
    await failure('A typo fails at once, before any call to Azure', { keyvaultName: 'shop_kv' });

    console.log('\nProvider log (klog text; -v=2, so successful mounts show; `grep ^E` finds the failures):');
    console.log(provider.logs().trim().split('\n').slice(-5).join('\n'));
  } finally {
    await provider.stop();
    await azure.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
