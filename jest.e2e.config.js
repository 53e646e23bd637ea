/**
 * `npm run test:e2e`: the browser tests of test/e2e (headless Chromium driven by playwright-core), kept out of
 * `npm test` because they need Debian's chromium. Same transform and jose mapping as jest.config.js.
 * @type {import('jest').Config}
 */
const base = require('./jest.config');

module.exports = {
  ...base,
  roots: ['<rootDir>/test/e2e'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 120000,
};
