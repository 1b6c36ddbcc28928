import { testConfig } from '../../vitest.shared.js';

// Building the package and a dpkg -i / --purge cycle on a shared 2-core machine.
export default testConfig([], { testTimeout: 600_000, hookTimeout: 600_000 });
