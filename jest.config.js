/** Jest runs TypeScript through swc; one PostgreSQL server serves the whole run (see test/harness). */
module.exports = {
  // Node's, and each file's open handles drained and named at its end (the harness file says why).
  testEnvironment: '<rootDir>/test/harness/draining-environment.ts',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest'] },
  transformIgnorePatterns: ['/node_modules/(?!@middy/)'],
  // @middy/core 7 and @middy/util export for `import` alone; jest resolves `require`. Their one
  // file each, which swc then compiles like the project's own code (above).
  moduleNameMapper: { '^@middy/(core|util)$': '<rootDir>/node_modules/@middy/$1/index.js' },
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
  testTimeout: 60_000,
  maxWorkers: 2,
};
