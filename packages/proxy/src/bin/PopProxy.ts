#!/usr/bin/env node
/** PopProxy: the POP3 multiplexor (admin guide ch. 13). `PopProxy [install] [options]`. */
// First: SIGUSR1 must never open the inspector, not even while the rest loads.
import './noInspector.js';
import cluster from 'node:cluster';
import { main } from '../main.js';

const code = await main('pop3', process.argv.slice(2), process.env);
process.exitCode = code;
// A NumThreads worker's channel to the primary would keep it alive (workers.ts); its log is
// closed by now.
if (cluster.isWorker) process.exit(code);
