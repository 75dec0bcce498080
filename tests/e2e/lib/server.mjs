// End-to-end harness: runs the real consentd binary against a fresh SQLite file in a temp dir.
//
// startServer() creates a temp dir, creates the requested accounts with `consentd account create`,
// spawns `consentd serve --listen 127.0.0.1:0` and waits for the {"msg":"listening","port":N} log line.
// Everything is parallel-safe: one temp dir and one kernel-chosen port per server.
//
// Binary: $CONSENTD_BIN, else <repo>/build/consentd (make check points CONSENTD_BIN at the sanitizer build).

import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, access } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = process.env.CONSENTD_BIN || path.join(REPO, 'build', 'consentd');

const START_TIMEOUT_MS = 15000;
const STOP_TIMEOUT_MS = 10000;
const CLI_TIMEOUT_MS = 20000;
const REQ_TIMEOUT_MS = 10000;

/** Every spawned server, so that a crashed test run never leaves one behind. */
const live = new Set();
process.on('exit', () => {
    for (const p of live) {
        try { p.kill('SIGKILL'); } catch { /* already gone */ }
    }
});

export const ZERO_HASH = '0'.repeat(64);
export const HEX64 = /^[0-9a-f]{64}$/;
export const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** A valid, fictional US mobile-capable number in E.164: 646-555-01XX for n < 100, 212-555-01XX for n < 200. */
export function num(n) {
    if (!Number.isInteger(n) || n < 0 || n >= 200) throw new Error(`num(${n}) out of range`);
    const area = n < 100 ? '646' : '212';
    return `+1${area}55501${String(n % 100).padStart(2, '0')}`;
}

export function sha256hex(s) {
    return createHash('sha256').update(s).digest('hex');
}

function tail(text, lines = 60) {
    const all = text.split('\n');
    return all.slice(Math.max(0, all.length - lines)).join('\n');
}

async function ensureBinary() {
    try {
        await access(BIN, fsc.X_OK);
    } catch {
        throw new Error(`consentd binary not found or not executable at ${BIN} ` +
            '(build it with `make`, or set CONSENTD_BIN)');
    }
}

export async function makeTempDir() {
    return mkdtemp(path.join(os.tmpdir(), 'consentd-e2e-'));
}

/**
 * Run `consentd ARGS... --db sqlite:DBPATH` (the --db flag is appended when dbPath is given).
 * Resolves {code, stdout, stderr, json} and never rejects on a non-zero exit; json is the parsed
 * stdout when it is JSON, else undefined.
 */
export function runCli(args, { dbPath, env = {}, input } = {}) {
    const full = dbPath ? [...args, '--db', `sqlite:${dbPath}`] : [...args];
    return new Promise((resolve, reject) => {
        const child = execFile(BIN, full, {
            env: { ...process.env, ...env },
            timeout: CLI_TIMEOUT_MS,
            maxBuffer: 16 * 1024 * 1024,
        }, (err, stdout, stderr) => {
            if (err && typeof err.code !== 'number') {
                if (err.killed) {
                    reject(new Error(`consentd ${full.join(' ')} timed out\nstderr:\n${tail(stderr)}`));
                    return;
                }
                if (err.signal) {
                    resolve({ code: null, signal: err.signal, stdout, stderr, json: undefined });
                    return;
                }
                reject(err);
                return;
            }
            let json;
            try { json = JSON.parse(stdout); } catch { json = undefined; }
            resolve({ code: err ? err.code : 0, signal: null, stdout, stderr, json });
        });
        child.stdin.end(input);
    });
}

/** runCli that insists on exit 0 and JSON on stdout (when json is true). */
export async function cliOk(args, opts = {}, { json = true } = {}) {
    const r = await runCli(args, opts);
    if (r.code !== 0) {
        throw new Error(`consentd ${args.join(' ')} exited ${r.code ?? r.signal}\n` +
            `stdout:\n${tail(r.stdout)}\nstderr:\n${tail(r.stderr)}`);
    }
    if (json && r.json === undefined) {
        throw new Error(`consentd ${args.join(' ')} did not print JSON on stdout:\n${r.stdout}`);
    }
    return r;
}

/** `consentd account create` with sensible defaults; returns the printed object (incl. api_key). */
export async function createAccount(dbPath, name, { login, brand, region = 'US', timezone } = {}) {
    const args = ['account', 'create', name, '--login', login ?? `${name}@e2e.example.com`,
        '--region', region];
    if (brand) args.push('--brand', brand);
    if (timezone) args.push('--timezone', timezone);
    const r = await cliOk(args, { dbPath });
    return r.json;
}

/**
 * Requests without an explicit agent use a fresh connection each, so that a connection closed by the
 * server after an error can never be picked up by the next, unrelated request. Keep-alive is tested
 * explicitly with dedicated agents.
 */
const noKeepAlive = new http.Agent({ keepAlive: false });

/**
 * Plain HTTP request with node:http (not fetch) so tests control the raw body, headers, the
 * connection (agent) and can see early answers such as 413.
 *
 * body: undefined (none), a string or Buffer (sent as is), or any other value (JSON.stringify).
 * chunked: send with Transfer-Encoding: chunked instead of Content-Length.
 * Resolves {status, headers, text, json, reusedSocket, localPort}.
 */
export function request(baseUrl, method, urlPath, { body, headers = {}, agent, chunked = false,
    timeout = REQ_TIMEOUT_MS } = {}) {
    const u = new URL(urlPath, baseUrl);
    let payload;
    const hdrs = { ...headers };
    if (body !== undefined) {
        if (Buffer.isBuffer(body)) payload = body;
        else if (typeof body === 'string') payload = Buffer.from(body, 'utf8');
        else payload = Buffer.from(JSON.stringify(body), 'utf8');
        if (!Object.keys(hdrs).some((k) => k.toLowerCase() === 'content-type')) {
            hdrs['Content-Type'] = 'application/json';
        }
        if (!chunked) hdrs['Content-Length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
        let done = false;
        const req = http.request({
            host: u.hostname, port: u.port, method, path: u.pathname + u.search,
            headers: hdrs, agent: agent ?? noKeepAlive, timeout,
        });
        req.on('response', (res) => {
            const localPort = res.socket?.localPort;
            const reusedSocket = req.reusedSocket;
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('error', (e) => { if (!done) { done = true; reject(e); } });
            res.on('end', () => {
                if (done) return;
                done = true;
                const text = Buffer.concat(chunks).toString('utf8');
                let json;
                try { json = text.length ? JSON.parse(text) : undefined; } catch { json = undefined; }
                resolve({ status: res.statusCode, headers: res.headers, text, json, reusedSocket, localPort });
            });
        });
        req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer in ${timeout} ms`)));
        req.on('error', (e) => {
            if (done) return;
            done = true;
            const err = new Error(`${method} ${urlPath}: ${e.message}`, { cause: e });
            err.code = e.code;
            reject(err);
        });
        if (payload !== undefined) {
            if (chunked) {
                const step = 64 * 1024;
                for (let i = 0; i < payload.length; i += step) req.write(payload.subarray(i, i + step));
                req.end();
            } else {
                req.end(payload);
            }
        } else {
            req.end();
        }
    });
}

/**
 * One HTTP/1.1 request on a fresh TCP connection that keeps reading while it writes and ignores write
 * errors, so an early answer (413 before the body is sent) is seen even if the server then closes.
 * body: Buffer/string; chunked: send it with Transfer-Encoding: chunked. With an `Expect: 100-continue`
 * header it waits (up to 1 s) for 100 Continue or a final answer before sending the body, as curl does.
 * Resolves {status, headers, text, json} or {status: 0, raw} when no complete answer came back.
 */
export function rawHttp(port, { method = 'POST', path: urlPath, headers = {}, body = '', chunked = false,
    timeout = 10000 } = {}) {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    const head = [`${method} ${urlPath} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close'];
    const expectContinue = Object.entries(headers).some(([k, v]) => k.toLowerCase() === 'expect' && /100-continue/i.test(v));
    for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`);
    head.push(chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${buf.length}`);
    return new Promise((resolve) => {
        const chunks = [];
        let finished = false;
        const sock = net.connect({ host: '127.0.0.1', port });
        const parse = () => {
            let all = Buffer.concat(chunks);
            // Skip interim 1xx answers (100 Continue).
            while (/^HTTP\/1\.[01] 1\d\d /.test(all.subarray(0, 16).toString('latin1'))) {
                const e = all.indexOf('\r\n\r\n');
                if (e < 0) return null;
                all = all.subarray(e + 4);
            }
            const end = all.indexOf('\r\n\r\n');
            if (end < 0) return null;
            const lines = all.subarray(0, end).toString('latin1').split('\r\n');
            const m = lines[0].match(/^HTTP\/1\.[01] (\d{3})/);
            if (!m) return null;
            const hdrs = {};
            for (const l of lines.slice(1)) {
                const i = l.indexOf(':');
                if (i > 0) hdrs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
            }
            const rest = all.subarray(end + 4);
            const len = hdrs['content-length'] !== undefined ? Number(hdrs['content-length']) : null;
            if (len !== null && rest.length < len) return null;
            const text = (len !== null ? rest.subarray(0, len) : rest).toString('utf8');
            let json;
            try { json = JSON.parse(text); } catch { json = undefined; }
            return { status: Number(m[1]), headers: hdrs, text, json };
        };
        const finish = () => {
            if (finished) return;
            finished = true;
            sock.destroy();
            resolve(parse() ?? { status: 0, headers: {}, text: '', json: undefined,
                raw: Buffer.concat(chunks).toString('latin1').slice(0, 500) });
        };
        sock.setTimeout(timeout, finish);
        sock.on('data', (c) => {
            chunks.push(c);
            const r = parse();
            if (r && r.headers['content-length'] !== undefined) finish();
        });
        sock.on('error', () => { /* EPIPE/ECONNRESET while writing: keep what was read */ });
        sock.on('close', finish);
        sock.on('connect', async () => {
            const write = (b) => new Promise((res) => {
                if (finished || sock.destroyed) { res(false); return; }
                if (sock.write(b)) res(true);
                else { sock.once('drain', () => res(true)); sock.once('close', () => res(false)); }
            });
            await write(head.join('\r\n') + '\r\n\r\n');
            if (expectContinue) {
                // Wait for "100 Continue" or a final answer (e.g. 413) before sending the body.
                await new Promise((res) => {
                    const t = setTimeout(res, 1000);
                    const check = () => {
                        if (chunks.length) { clearTimeout(t); sock.off('data', check); res(); }
                    };
                    sock.on('data', check);
                    check();
                });
                if (finished || parse()) return;
            }
            const step = 64 * 1024;
            for (let i = 0; i < buf.length && !finished; i += step) {
                const piece = buf.subarray(i, i + step);
                const ok = chunked
                    ? await write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]))
                    : await write(piece);
                if (!ok) return;
            }
            if (chunked) await write('0\r\n\r\n');
        });
    });
}

/** Send raw bytes on a fresh TCP connection; resolves whatever came back before the close/timeout. */
export function rawExchange(port, bytes, { timeout = 3000 } = {}) {
    return new Promise((resolve) => {
        const chunks = [];
        const sock = net.connect({ host: '127.0.0.1', port });
        const finish = () => { sock.destroy(); resolve(Buffer.concat(chunks).toString('latin1')); };
        sock.setTimeout(timeout, finish);
        sock.on('data', (c) => chunks.push(c));
        sock.on('error', finish);
        sock.on('close', finish);
        sock.on('connect', () => sock.write(bytes));
    });
}

/**
 * Start a consentd server.
 *  accounts: names (or {name, login, brand, region, timezone}) created before serve; default ['acme'].
 *  dir/dbPath: reuse an existing directory/database (restart tests); then pass accounts: [].
 *  env, args: extra environment / serve flags. useEnv: pass listen and db via CONSENTD_* instead of flags.
 * Returns {url, port, dir, dbPath, key, account, accounts, api, v1, cli, stop, stderr, logLines}.
 */
export async function startServer({ accounts = ['acme'], dir, dbPath, env = {}, args = [],
    useEnv = false } = {}) {
    await ensureBinary();
    dir = dir ?? await makeTempDir();
    dbPath = dbPath ?? path.join(dir, 'consentd.db');

    const created = {};
    for (const a of accounts) {
        const spec = typeof a === 'string' ? { name: a } : a;
        created[spec.name] = await createAccount(dbPath, spec.name, spec);
    }

    const serveArgs = useEnv ? ['serve', ...args]
        : ['serve', '--listen', '127.0.0.1:0', '--db', `sqlite:${dbPath}`, ...args];
    const serveEnv = { ...process.env, ...env };
    if (useEnv) {
        serveEnv.CONSENTD_LISTEN = '127.0.0.1:0';
        serveEnv.CONSENTD_DB = `sqlite:${dbPath}`;
    }
    const proc = spawn(BIN, serveArgs, { env: serveEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);

    let stderr = '';
    let stdout = '';
    let exit = null; // {code, signal} once exited
    const exited = new Promise((resolve) => {
        proc.on('exit', (code, signal) => { exit = { code, signal }; live.delete(proc); resolve(exit); });
    });
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => { stdout += d; });

    const port = await new Promise((resolve, reject) => {
        let buf = '';
        let found = false;
        const timer = setTimeout(() => {
            if (found) return;
            proc.kill('SIGKILL');
            reject(new Error(`consentd serve did not log {"msg":"listening"} within ${START_TIMEOUT_MS} ms\n` +
                `stderr:\n${tail(stderr)}`));
        }, START_TIMEOUT_MS);
        proc.stderr.setEncoding('utf8');
        proc.stderr.on('data', (d) => {
            stderr += d;
            if (found) return;
            buf += d;
            let nl;
            while ((nl = buf.indexOf('\n')) >= 0) {
                const line = buf.slice(0, nl);
                buf = buf.slice(nl + 1);
                let obj;
                try { obj = JSON.parse(line); } catch { continue; }
                if (obj && obj.msg === 'listening' && Number.isInteger(obj.port) && obj.port > 0) {
                    found = true;
                    clearTimeout(timer);
                    resolve(obj.port);
                    return;
                }
            }
        });
        proc.on('error', (e) => { clearTimeout(timer); reject(e); });
        exited.then(({ code, signal }) => {
            if (found) return;
            clearTimeout(timer);
            reject(new Error(`consentd serve exited early (code ${code}, signal ${signal})\n` +
                `stderr:\n${tail(stderr)}`));
        });
    });

    const url = `http://127.0.0.1:${port}`;
    const names = Object.keys(created);
    const first = names.length ? created[names[0]] : undefined;

    const srv = {
        url, port, dir, dbPath, proc,
        accounts: created,
        account: first,
        key: first?.api_key,
        stderr: () => stderr,
        stdout: () => stdout,
        exited: () => exit,
        /** Parsed JSON log lines so far (non-JSON lines are returned as {__raw: line}). */
        logLines() {
            return stderr.split('\n').filter((l) => l.trim().length).map((l) => {
                try { return JSON.parse(l); } catch { return { __raw: l }; }
            });
        },

        /**
         * api(method, path, {body, key, headers, agent, chunked}). key defaults to the first account's
         * key; key: null sends no Authorization header.
         */
        async api(method, urlPath, { body, key, headers = {}, agent, chunked, timeout } = {}) {
            const k = key === undefined ? srv.key : key;
            const h = { ...headers };
            if (k !== null && k !== undefined) h.Authorization = `Bearer ${k}`;
            try {
                return await request(url, method, urlPath, { body, headers: h, agent, chunked, timeout });
            } catch (e) {
                // If the server died, say so with its stderr instead of a bare ECONNREFUSED.
                await Promise.race([exited, new Promise((r) => setTimeout(r, 300))]);
                if (exit) {
                    e.message += `\nconsentd serve has exited (code ${exit.code}, signal ${exit.signal})\n` +
                        `stderr:\n${tail(stderr)}`;
                }
                throw e;
            }
        },
        /** api() with the /api/v1 prefix. */
        v1(method, p, opts) {
            return srv.api(method, `/api/v1${p}`, opts);
        },
        /** CLI against this server's database. */
        cli(cliArgs, opts = {}) {
            return runCli(cliArgs, { dbPath, ...opts });
        },
        cliOk(cliArgs, opts = {}, o2) {
            return cliOk(cliArgs, { dbPath, ...opts }, o2);
        },

        /** SIGKILL (a crash) and wait for the exit; the temp dir and database stay for a restart. */
        async kill9() {
            if (!exit) {
                proc.kill('SIGKILL');
                await exited;
            }
            return exit;
        },

        /**
         * SIGTERM and wait. Throws (with stderr) if the exit was not clean, so sanitizer reports
         * and crashes surface in the `after` hook. keepDir keeps the temp dir for a restart.
         */
        async stop({ keepDir = false, expectClean = true } = {}) {
            if (!exit) {
                proc.kill('SIGTERM');
                const t = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
                await exited;
                clearTimeout(t);
            }
            if (!keepDir && !process.env.CONSENTD_E2E_KEEP) {
                await rm(dir, { recursive: true, force: true });
            }
            if (expectClean && (exit.code !== 0 || exit.signal)) {
                throw new Error(`consentd serve did not exit cleanly on SIGTERM ` +
                    `(code ${exit.code}, signal ${exit.signal})\nstderr:\n${tail(stderr)}`);
            }
            return exit;
        },
    };
    return srv;
}

/** Assert helper: the native error shape {"error":{"code","message","field"}}. */
export function errorOf(res) {
    const j = res.json;
    if (!j || typeof j !== 'object' || !j.error || typeof j.error !== 'object') {
        throw new Error(`expected a native error body, got ${res.status}: ${res.text.slice(0, 500)}`);
    }
    const e = j.error;
    if (typeof e.code !== 'string' || !/^[a-z][a-z0-9_]*$/.test(e.code)) {
        throw new Error(`error.code must be snake_case, got ${JSON.stringify(e.code)}`);
    }
    if (typeof e.message !== 'string') throw new Error(`error.message must be a string: ${res.text}`);
    if (!('field' in e) || !(e.field === null || typeof e.field === 'string')) {
        throw new Error(`error.field must be a string or null: ${res.text}`);
    }
    return e;
}

/** Follow next_cursor from `path` (which may already have a query) and return every page. */
export async function allPages(srv, p, { limit, key } = {}) {
    const pages = [];
    let cursor = null;
    for (let i = 0; i < 1000; i++) {
        const u = new URL(p, 'http://x');
        if (limit) u.searchParams.set('limit', String(limit));
        if (cursor) u.searchParams.set('cursor', cursor);
        const r = await srv.v1('GET', u.pathname + u.search, { key });
        if (r.status !== 200) throw new Error(`GET ${u.pathname + u.search} -> ${r.status} ${r.text}`);
        pages.push(r.json);
        cursor = r.json.next_cursor;
        if (cursor === null) return pages;
        if (typeof cursor !== 'string' || !cursor.length) {
            throw new Error(`next_cursor must be a non-empty string or null, got ${JSON.stringify(cursor)}`);
        }
    }
    throw new Error(`paging ${p} did not end after 1000 pages`);
}
