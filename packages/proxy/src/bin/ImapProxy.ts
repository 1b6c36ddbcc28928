#!/usr/bin/env node
/** ImapProxy: the IMAP multiplexor (admin guide ch. 13). `ImapProxy [install] [options]`. */
import { main } from '../main.js';

process.exitCode = await main('imap', process.argv.slice(2), process.env);
