/**
 * `npm run demo`: the provider doing its main job with no Azure account. Starts local stand-ins for the node's IMDS
 * and for Key Vault (TLS, test CA), the real provider process on a unix socket, then sends the driver's Mount call for
 * a SecretProviderClass that uses the node's managed identity, and prints the files the driver would write.
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
`;

async function main(): Promise<void> {
  const azure = await startAzureStandIns({ identities: { systemAssigned: { id: 'aks-node-pool-identity' } } });
  const provider = await startProvider({ env: azure.providerEnv(), args: ['--log-format-json'] }).catch(async (err: unknown) => {
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
      const text = /^[\x20-\x7e]*$/.test(file.contents.toString('latin1'))
        ? JSON.stringify(file.contents.toString())
        : `0x${file.contents.toString('hex')}`;
      console.log(`  ${file.path.padEnd(16)} mode ${file.mode.toString(8).padStart(4, '0')}  ${text}`);
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

    try {
      await provider.client.mount({ attributes: { ...attributes, keyvaultName: 'shop_kv' }, permission: '420' });
    } catch (err) {
      console.log(`\nA typo fails at once, before any call to Azure:\n  ${(err as { details?: string }).details}`);
    }
    console.log('\nProvider log (JSON):');
    console.log(provider.logs().trim().split('\n').slice(-4).join('\n'));
  } finally {
    await provider.stop();
    await azure.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
