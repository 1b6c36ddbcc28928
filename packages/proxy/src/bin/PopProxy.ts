#!/usr/bin/env node
/** PopProxy: the POP3 multiplexor (admin guide ch. 13). `PopProxy [install] [options]`. */
import { main } from '../main.js';

process.exitCode = await main('pop3', process.argv.slice(2), process.env);
