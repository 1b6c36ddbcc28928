/**
 * @mmp/proxy: the multiplexor runtime. The package's users run its executables (`bin/`); `main`
 * is what they run.
 */
export { main } from './main.js';
