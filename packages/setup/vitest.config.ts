import { testConfig } from '../../vitest.shared.js';

// Starts the test bed, though not named *.e2e.test.ts.
export default testConfig(['src/e2e.test.ts']);
