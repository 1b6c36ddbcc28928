import { testConfig } from '../../vitest.shared.js';

// Every test here starts real servers (the test bed, HAProxy), though not named *.e2e.test.ts.
export default testConfig(['src/**/*.test.ts']);
