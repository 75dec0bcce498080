// bench/smsc.mjs -- the e2e SMSC simulator as a standalone process for bench/smpp.sh:
// prints "port N" once listening, then on SIGUSR1 prints "received N T" (messages that
// reached it, and the time in ms since the epoch), and exits on SIGTERM.
import { startSmsc } from '../tests/e2e/lib/smsc.mjs';

const smsc = await startSmsc({ port: 0 });
process.stdout.write(`port ${smsc.port}\n`);
process.on('SIGUSR1', () => process.stdout.write(`received ${smsc.received.length} ${Date.now()}\n`));
process.on('SIGTERM', async () => {
    await smsc.stop();
    process.exit(0);
});
