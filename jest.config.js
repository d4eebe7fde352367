/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The real-stack suite has its own config and command (npm run test:k8s).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/k8s/'],
  transform: { '^.+\\.ts$': ['ts-jest', {}] },
  // e2e tests start real processes and servers; give them room on a 2-core machine.
  testTimeout: 60000,
};
