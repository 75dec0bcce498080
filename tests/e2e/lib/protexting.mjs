// Helpers for the ProTexting surface tests (issue 10, seed 000): requests with
// ?access_token=KEY in JSON, form or raw bodies, and read-backs through the native API.

import assert from 'node:assert/strict';
import { request } from './server.mjs';
import { listMessages } from './msgkit.mjs';

export const DEFAULT_CTA = 'Reply with YES to confirm your phone number. Msg&Data rates may apply.';
export const DEFAULT_CONFIRM = 'Your phone number is successfully confirmed';
export const CACHE_CONTROL = 'no-store, no-cache, must-revalidate, post-check=0, pre-check=0';
export const CONTACT_KEYS = ['Id', 'Number', 'OptedOut', 'FirstName', 'LastName', 'BirthDay', 'Email',
    'Zip', 'City', 'DateCreated', 'DateUpdated', 'GroupIds', 'CustomFieldIds'];
export const LOCAL_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

/**
 * POST to a ProTexting path. key: the access token (null: none). body: an object sent as JSON,
 * or {form: 'a=1&b=2'} sent form-encoded, or {raw, type} sent as is. xml: Accept application/xml.
 */
export function pt(srv, path, { key, body, xml = false, method = 'POST', headers = {} } = {}) {
    const k = key === undefined ? srv.key : key;
    const url = k === null ? path : `${path}?access_token=${encodeURIComponent(k)}`;
    const h = { Accept: xml ? 'application/xml' : 'application/json', ...headers };
    let payload = body;
    if (body && typeof body === 'object' && 'form' in body) {
        h['Content-Type'] = 'application/x-www-form-urlencoded';
        payload = body.form;
    } else if (body && typeof body === 'object' && 'raw' in body) {
        h['Content-Type'] = body.type;
        payload = body.raw;
    }
    return request(srv.url, method, url, { body: payload, headers: h });
}

export const create = (srv, body, opts = {}) => pt(srv, '/v1/contacts-opt-in/create', { ...opts, body });
export const optOut = (srv, body, opts = {}) => pt(srv, '/v1/contacts/opt-out', { ...opts, body });
export const undo = (srv, body, opts = {}) =>
    pt(srv, '/v1/contacts-opt-in/create-custom', { ...opts, body });

/** Digits of an E.164 number, as ProTexting writes them. */
export const digits = (e164) => e164.replace(/^\+/, '');

/** A group of the account (native API); returns its integer id. */
export async function makeGroup(srv, name, { key } = {}) {
    const r = await srv.v1('POST', '/groups', { body: { name }, key });
    assert.equal(r.status, 201, r.text);
    return r.json.id;
}

/** The native contact, or null when there is none. */
export async function nativeContact(srv, phone, { key } = {}) {
    const r = await srv.v1('GET', `/contacts/${encodeURIComponent(phone)}`, { key });
    if (r.status === 404) return null;
    assert.equal(r.status, 200, r.text);
    return r.json;
}

/** {scope: state} of a contact. */
export async function consentsOf(srv, phone, { key } = {}) {
    const r = await srv.v1('GET', `/contacts/${encodeURIComponent(phone)}/consents`, { key });
    if (r.status === 404) return {};
    assert.equal(r.status, 200, r.text);
    return Object.fromEntries(r.json.data.map((c) => [c.scope, c.state]));
}

/** Outbound messages to a number, oldest first: [{kind, status, reason, text}]. */
export async function outTo(srv, phone, { key } = {}) {
    const all = await listMessages(srv, { to: phone }, { key });
    return all.reverse().map((m) => ({ kind: m.kind, status: m.status, reason: m.reason, text: m.text, id: m.id }));
}

/** The answer's 422 list as JSON, also from its XML form. */
export function xmlErrors(text) {
    const items = [...text.matchAll(/<item><field>([^<]*)<\/field><message>([^<]*)<\/message><\/item>/g)];
    return items.map((m) => ({ field: m[1], message: m[2].replace(/&quot;/g, '"') }));
}
