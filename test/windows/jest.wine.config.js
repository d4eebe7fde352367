/**
 * The Wine suite (npm run test:windows): the Windows build of the addon in the official Windows node.exe under Wine.
 * Its files end in .wine.ts, so the default suite (jest.config.js, *.test.ts) never picks them up. One worker: the
 * suite shares one Wine prefix and the provider test listens at the fixed C:\provider\azure.sock.
 * @type {import('jest').Config}
 */
module.exports = {
  rootDir: '../..',
  testEnvironment: 'node',
  roots: ['<rootDir>/test/windows/wine'],
  testMatch: ['**/*.wine.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', {}] },
  maxWorkers: 1,
  // Creating the Wine prefix (first run) and compiling the staged app take a while on a 2-core machine.
  testTimeout: 240000,
};
