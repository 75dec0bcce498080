// A real HTTP webhook receiver for the webhook e2e tests (issue 15): records every request
// (headers, raw body, time) and answers as told: 200 by default, a status for the next N
// requests (failNext), a status for every request (failAll), a delay, or a redirect.
// verify() checks a Consentd-Signature the way a receiver should (README example).

import http from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';

export async function startReceiver({ host = '127.0.0.1' } = {}) {
    const got = [];
    let failLeft = 0;
    let failStatus = 500;
    let always = 0; // a status for every request, 0 = off
    let delayMs = 0;
    let bodyOut = 'ok';
    let redirectTo = null;
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            let status = 200;
            if (always) status = always;
            else if (failLeft > 0) { failLeft--; status = failStatus; }
            const entry = { at: Date.now(), method: req.method, url: req.url, headers: req.headers, body, status };
            try { entry.json = JSON.parse(body); } catch { /* not JSON */ }
            got.push(entry);
            const answer = () => {
                if (redirectTo) {
                    res.writeHead(302, { Location: redirectTo });
                    res.end();
                    return;
                }
                res.writeHead(status, { 'Content-Type': 'text/plain' });
                res.end(bodyOut);
            };
            if (delayMs) setTimeout(answer, delayMs); else answer();
        });
    });
    server.keepAliveTimeout = 60000;
    await new Promise((r) => server.listen(0, host, r));
    const { port } = server.address();
    return {
        port,
        url: `http://${host}:${port}/hook`,
        got,
        /** Requests whose body is a given event type (or all). */
        events(type) { return got.filter((g) => g.json && (!type || g.json.type === type)); },
        /** Successful (2xx) receipts only. */
        accepted(type) { return this.events(type).filter((g) => g.status >= 200 && g.status < 300); },
        failNext(n, status = 500) { failLeft = n; failStatus = status; },
        failAll(status = 503) { always = status; },
        heal() { always = 0; failLeft = 0; redirectTo = null; delayMs = 0; },
        delay(ms) { delayMs = ms; },
        answerBody(s) { bodyOut = s; },
        redirect(to) { redirectTo = to; },
        async stop() {
            server.closeAllConnections?.();
            await new Promise((r) => server.close(r));
        },
    };
}

/**
 * The receiver's check: HMAC-SHA256(secret, timestamp + "." + raw body) as hex, compared in
 * constant time with the v1= value of Consentd-Signature.
 */
export function verify(secret, headers, rawBody) {
    const ts = headers['consentd-timestamp'];
    const sig = headers['consentd-signature'] || '';
    if (!ts || !sig.startsWith('v1=')) return false;
    const want = createHmac('sha256', secret).update(`${ts}.${rawBody}`).digest('hex');
    const have = sig.slice(3);
    return have.length === want.length && timingSafeEqual(Buffer.from(have), Buffer.from(want));
}
