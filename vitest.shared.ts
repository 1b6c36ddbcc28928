/**
 * The test split every package shares: `unit` runs without slapd, Dovecot or the built proxies
 * (the fast loop, `pnpm test:unit`); `e2e` holds the files named `*.e2e.test.ts` and any other
 * test file a package lists because it starts the test bed (`pnpm test:e2e`). `vitest run` (and
 * `pnpm test`) runs both.
 */

import { type ViteUserConfig, defineConfig } from 'vitest/config';

const E2E = 'src/**/*.e2e.test.ts';

export function testConfig(
  otherE2eFiles: readonly string[] = [],
  timeouts: { testTimeout: number; hookTimeout: number } = {
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
): ViteUserConfig {
  const e2e = [E2E, ...otherE2eFiles];
  return defineConfig({
    test: {
      ...timeouts,
      // A package may have only one kind (the test bed has no unit tests, config no e2e ones).
      passWithNoTests: true,
      projects: [
        { extends: true, test: { name: 'unit', include: ['src/**/*.test.ts'], exclude: e2e } },
        { extends: true, test: { name: 'e2e', include: e2e } },
      ],
    },
  });
}
