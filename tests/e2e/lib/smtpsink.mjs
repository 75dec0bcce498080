// A real SMTP server for end-to-end tests (issue 13), built on the npm package smtp-server.
// It keeps every mail it accepts, and can be switched at any time to refuse mails (550) or to
// hang (no greeting: the client times out), to provoke consentd's mail failures.
//
// startSmtpSink({users, tls}) -> {port, url, mails, auths, mode, setMode, waitForMail, close}
//   users: {name: password}; when given, AUTH is required and checked.
//   tls: {key, cert} (PEM): STARTTLS is offered with that certificate.
//   mails: [{from, to: [..], raw, headers: {lowercased: value}, text, links: [path]}]
//   auths: [{username, password, ok}] (every AUTH attempt)
import { SMTPServer } from 'smtp-server';

function parseMail(raw) {
    const sep = raw.indexOf('\r\n\r\n');
    const head = sep >= 0 ? raw.slice(0, sep) : raw;
    const text = sep >= 0 ? raw.slice(sep + 4) : '';
    const headers = {};
    for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const links = [...text.matchAll(/https?:\/\/[^\s/]+(\/c\/[^\s]+)/g)].map((m) => m[1]);
    return { raw, headers, text, links };
}

export async function startSmtpSink({ users, tls } = {}) {
    const sink = { mails: [], auths: [], mode: 'accept', hung: [] };
    const server = new SMTPServer({
        secure: false,
        disabledCommands: [...(tls ? [] : ['STARTTLS']), ...(users ? [] : ['AUTH'])],
        ...(tls ? { key: tls.key, cert: tls.cert } : {}),
        allowInsecureAuth: true,
        authOptional: !users,
        logger: false,
        socketTimeout: 30000,
        onConnect(session, cb) {
            // 'timeout': never greet; the client must give up by itself.
            if (sink.mode === 'timeout') { sink.hung.push(cb); return; }
            cb();
        },
        onAuth(auth, session, cb) {
            const ok = users && users[auth.username] === auth.password;
            sink.auths.push({ username: auth.username, password: auth.password, ok: !!ok });
            if (!ok) return cb(new Error('Invalid username or password'));
            cb(null, { user: auth.username });
        },
        onData(stream, session, cb) {
            const chunks = [];
            stream.on('data', (c) => chunks.push(c));
            stream.on('end', () => {
                if (sink.mode === 'reject') {
                    const e = new Error('Mailbox unavailable');
                    e.responseCode = 550;
                    return cb(e);
                }
                const mail = parseMail(Buffer.concat(chunks).toString('utf8'));
                mail.from = session.envelope.mailFrom && session.envelope.mailFrom.address;
                mail.to = session.envelope.rcptTo.map((r) => r.address);
                sink.mails.push(mail);
                cb();
            });
        },
    });
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
    });
    server.on('error', () => { /* a client that went away */ });
    const port = server.server.address().port;
    return Object.assign(sink, {
        port,
        url: `smtp://127.0.0.1:${port}`,
        setMode(m) { sink.mode = m; },
        async waitForMail(n = 1, { timeout = 10000 } = {}) {
            const t0 = Date.now();
            while (sink.mails.length < n) {
                if (Date.now() - t0 > timeout) {
                    throw new Error(`expected ${n} mails, got ${sink.mails.length}`);
                }
                await new Promise((r) => setTimeout(r, 25));
            }
            return sink.mails[n - 1];
        },
        async close() {
            sink.hung.forEach((cb) => cb(new Error('closing')));
            await new Promise((r) => server.close(r));
        },
    });
}
