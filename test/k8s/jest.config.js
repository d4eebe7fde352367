/**
 * The real-stack suite: the real driver, kube-apiserver and etcd (built by test/k8s/build.sh) against the real
 * provider process. One file at a time: each starts a control plane, and the machine has two cores.
 */
/** @type {import('jest').Config} */
module.exports = {
  rootDir: '../..',
  testEnvironment: 'node',
  roots: ['<rootDir>/test/k8s'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', {}] },
  maxWorkers: 1,
  testTimeout: 180000,
};
