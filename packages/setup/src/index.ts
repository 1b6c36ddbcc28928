/** mmp-setup as a library: the dialogue, the plan and the atomic apply, for embedding and tests. */
export * from './answers.js';
export * from './apply.js';
export * from './checks.js';
export * from './cli.js';
export * from './dialogue.js';
export * from './import.js';
export * from './instances.js';
export * from './layout.js';
export * from './options.js';
export * from './plan.js';
export * from './prompter.js';
export * from './report.js';
export * from './runtime.js';
export * from './scripts.js';
export * from './table.js';
