// A real OpenID provider (the `oidc-provider` package) for the Civitas
// single sign-on tests.
//
//   PORT=... REDIRECT_URI=... node provider.mjs
//
// Prints one JSON line `{"issuer": ...}` once it listens. The person who
// signs in is chosen by the test: `POST /__test/next` with
// `{"account": "id", "claims": {...}}`. Consent is granted automatically.
// `GET /__test/stats` counts calls to the userinfo endpoint.
// `POST /__test/mode` with `{"mode": ...}` makes the next ID tokens
// misbehave the way a hostile or broken provider would, by re-signing the
// provider's real token:
//   bad-signature  signed by another key under the same key id
//   expired        issued and expired two hours ago
//   wrong-audience issued for another client
//   skewed         issued 30 seconds in the future (within tolerance)
//   rotate         the provider switches to a new signing key (key rotation)
//   userinfo       the ID token carries no e-mail: it is at the userinfo endpoint
//   normal         as issued

import { createServer } from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = process.env.REDIRECT_URI;

async function signingKey(kid) {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

const first = await signingKey('key-1');
const second = await signingKey('key-2');
const impostor = await signingKey('key-1');

let mode = 'normal';
let next = { account: 'nobody', claims: {} };
let rotated = false;
let userinfoCalls = 0;

const accounts = new Map();

function configuration(keys) {
  return {
    clients: [
      {
        client_id: 'civitas',
        client_secret: 'civitas-test-client-secret',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: 'civitas-post',
        client_secret: 'civitas-test-post-secret',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys },
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups', 'roles', 'org'],
    },
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, ...(accounts.get(id) ?? {}) }),
    }),
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['civitas-test-cookie-key'] },
  };
}

let provider = new Provider(issuer, configuration([first]));

async function finishInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === 'login') {
    accounts.set(next.account, next.claims);
    return provider.interactionResult(req, res, { login: { accountId: next.account } }, { mergeWithLastSubmission: false });
  }
  const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  if (details.prompt.details.missingOIDCScope) grant.addOIDCScope(details.prompt.details.missingOIDCScope.join(' '));
  if (details.prompt.details.missingOIDCClaims) grant.addOIDCClaims(details.prompt.details.missingOIDCClaims);
  const grantId = await grant.save();
  return provider.interactionResult(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

async function tamper(body) {
  const token = JSON.parse(body);
  if (!token.id_token || (mode === 'normal' && !rotated)) return body;
  const claims = jose.decodeJwt(token.id_token);
  const now = Math.floor(Date.now() / 1000);
  let key = rotated ? second : first;
  if (mode === 'bad-signature') key = impostor;
  if (mode === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
  if (mode === 'wrong-audience') claims.aud = 'another-client';
  if (mode === 'skewed') Object.assign(claims, { iat: now + 30, exp: now + 3600 });
  const privateKey = await jose.importJWK(key, 'RS256');
  token.id_token = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
    .sign(privateKey);
  return JSON.stringify(token);
}

async function readJson(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : {};
}

const server = createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/__test/next') {
      next = await readJson(req);
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST' && req.url === '/__test/mode') {
      ({ mode } = await readJson(req));
      if (mode === 'rotate' && !rotated) {
        // A new key signs from now on; the old one stays published.
        rotated = true;
        provider = new Provider(issuer, configuration([second, first]));
      }
      if (mode === 'normal') {
        provider = new Provider(issuer, configuration(rotated ? [second, first] : [first]));
      }
      if (mode === 'userinfo') {
        // Claims only at the userinfo endpoint, as some providers do.
        const keys = rotated ? [second, first] : [first];
        provider = new Provider(issuer, { ...configuration(keys), conformIdTokenClaims: true });
      }
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && req.url === '/__test/stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ userinfo: userinfoCalls }));
      return;
    }
    if (req.url.startsWith('/me')) userinfoCalls += 1;
    if (req.url.startsWith('/interaction/')) {
      const redirectTo = await finishInteraction(req, res);
      res.writeHead(303, { Location: redirectTo }).end();
      return;
    }
    if (req.method === 'POST' && req.url.startsWith('/token')) {
      const chunks = [];
      const write = res.write.bind(res);
      const end = res.end.bind(res);
      res.write = (chunk) => { chunks.push(Buffer.from(chunk)); return true; };
      res.end = (chunk, ...rest) => {
        if (chunk && typeof chunk !== 'function') chunks.push(Buffer.from(chunk));
        const body = Buffer.concat(chunks).toString();
        tamper(body).then((changed) => {
          res.removeHeader('content-length');
          res.setHeader('content-length', Buffer.byteLength(changed));
          write(changed);
          end();
        }, (error) => { console.error(error); end(); });
        return res;
      };
    }
    provider.callback()(req, res);
  } catch (error) {
    console.error(error);
    res.writeHead(500).end(String(error));
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer }));
});
