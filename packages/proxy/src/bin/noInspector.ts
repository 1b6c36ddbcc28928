/**
 * SIGUSR1's default in Node.js opens the inspector on 127.0.0.1:9229, through which any process of
 * the same user could run code in the proxy and read the passwords in flight (issue 12). Any
 * JavaScript listener turns that off; this one is installed by the executables' first import, so
 * no window is left while the rest loads. main.ts adds the signal's meaning: reopen the log.
 */
process.on('SIGUSR1', () => undefined);
