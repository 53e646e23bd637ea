/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/e2e/'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  // jose 6 is ES modules only: Node >= 20.19 require()s it, Jest 29's module registry cannot.
  moduleNameMapper: { '^jose$': '<rootDir>/test/helpers/jose.cjs' },
  testTimeout: 60000,
  setupFiles: ['<rootDir>/test/helpers/masterKey.ts'],
};
