// Token helpers for the integration tests: HS256 through jsonwebtoken, EdDSA through jose, and
// hand-made bad tokens (tampered, alg "none").

import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import jwt from 'jsonwebtoken';

import { HS_SECRET } from './server.mjs';

const nowSec = () => Math.floor(Date.now() / 1000);

/** A fresh session id, so tests sharing one server never share sessions by accident. */
export function newSid(prefix = 's') {
  return `${prefix}-${randomUUID()}`;
}

/**
 * HS256 token signed with the configured secret, kid "hs".
 * opts: { expiresIn (seconds or ms-style string, default 600), kid, secret, exp (absolute) }
 */
export function hsToken(claims = {}, opts = {}) {
  const body = { sub: 'u1', sid: newSid(), ...claims };
  const signOpts = { algorithm: 'HS256', keyid: opts.kid ?? 'hs' };
  if (opts.exp !== undefined) body.exp = opts.exp;
  else signOpts.expiresIn = opts.expiresIn ?? 600;
  if (opts.kid === null) delete signOpts.keyid;
  return jwt.sign(body, opts.secret ?? HS_SECRET, signOpts);
}

/** EdDSA (Ed25519) token signed with privateKey, kid "ed". opts: { ttlSec (600), exp, kid } */
export async function edToken(privateKey, claims = {}, opts = {}) {
  const body = { sub: 'u1', sid: newSid(), ...claims };
  const exp = opts.exp ?? nowSec() + (opts.ttlSec ?? 600);
  return new SignJWT(body)
    .setProtectedHeader({ alg: 'EdDSA', kid: opts.kid ?? 'ed', typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(privateKey);
}

export const b64url = (objOrBuf) =>
  Buffer.from(typeof objOrBuf === 'string' || Buffer.isBuffer(objOrBuf) ? objOrBuf : JSON.stringify(objOrBuf))
    .toString('base64url');

export function decodePart(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** Same header and signature, payload re-encoded with `changes` applied (valid JSON, bad sig). */
export function withTamperedPayload(token, changes) {
  const [h, p, s] = token.split('.');
  return [h, b64url({ ...decodePart(p), ...changes }), s].join('.');
}

/** Flips one character in the middle of the signature (keeps it valid base64url). */
export function withFlippedSignature(token) {
  const [h, p, s] = token.split('.');
  const i = Math.floor(s.length / 2);
  const flipped = s[i] === 'A' ? 'B' : 'A';
  return [h, p, s.slice(0, i) + flipped + s.slice(i + 1)].join('.');
}

/** Flips one character in the middle of the payload part. */
export function withFlippedPayloadChar(token) {
  const [h, p, s] = token.split('.');
  const i = Math.floor(p.length / 2);
  const flipped = p[i] === 'A' ? 'B' : 'A';
  return [h, p.slice(0, i) + flipped + p.slice(i + 1), s].join('.');
}

/** An unsigned token: header {"alg":"none","typ":"JWT"}, payload, empty signature. */
export function algNoneToken(claims = {}) {
  const body = { sub: 'u1', sid: newSid(), exp: nowSec() + 600, ...claims };
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(body)}.`;
}
