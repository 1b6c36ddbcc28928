/** @mmp/config: the one place that knows the multiplexor's configuration. */
export * from './types.js';
export * from './parameters.js';
export * from './values.js';
export * from './dn.js';
export * from './searchFormat.js';
export * from './configFile.js';
export * from './instances.js';
export * from './commandLine.js';
export * from './resolve.js';
export * from './vdmap.js';
export * from './certmap.js';
export * from './runtime.js';
export * from './successors.js';
export * from './migrate.js';
