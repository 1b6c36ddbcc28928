import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // Building the package and a dpkg -i / --purge cycle on a shared 2-core machine.
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
