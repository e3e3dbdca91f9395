/** Jest runs TypeScript through swc; one PostgreSQL server serves the whole run (see test/harness). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The fast-check properties take minutes at their full run count: `npm run test:properties`.
  testPathIgnorePatterns: process.env.METER_SYNC_PROPERTIES
    ? []
    : ['/node_modules/', '/test/properties/(?!regressions\\.test)'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest'] },
  transformIgnorePatterns: ['/node_modules/(?!@middy/)'],
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
  testTimeout: 60_000,
  maxWorkers: 2,
};
