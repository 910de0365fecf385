// A real OpenID provider (panva/oidc-provider, OpenID Certified) for Warden's sign-in tests.
//
// Listens on 127.0.0.1:$PORT only. $OIDC_TEST_CONFIG is JSON: {clients, accounts, clientGroups,
// clientTokenTTL}. The sign-in page asks for a user name only (tests are not about passwords);
// the grant is recorded with every scope asked for, so no consent page follows.
// Test controls, never part of a real provider:
//   POST /__control/accounts/<id>        body: claims (JSON)  -> replace a person's claims (groups)
//   POST /__control/clients/<id>/groups  body: ["group", ...] -> groups in that client's tokens
//   POST /__control/rotate                                     -> a new signing key (old one kept)
import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const config = JSON.parse(process.env.OIDC_TEST_CONFIG);
const accounts = config.accounts ?? {};
const clientGroups = config.clientGroups ?? {};
const clientTokenTTL = config.clientTokenTTL ?? {};

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

let keys = [newKey()];

async function findAccount(_ctx, id) {
  if (!accounts[id]) return undefined;
  return { accountId: id, claims: async () => ({ sub: id, ...accounts[id] }) };
}

function build() {
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: { keys },
    findAccount,
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    scopes: ['openid', 'profile', 'email', 'groups', 'warden:api'],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    cookies: { keys: ['warden-test-provider-cookie-key'] },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: (_ctx, resource, client) => ({
          scope: 'warden:api',
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: clientTokenTTL[client.clientId] ?? 600,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (_ctx, token) => (token.kind === 'ClientCredentials'
      ? { groups: clientGroups[token.clientId] ?? [] }
      : undefined),
    ttl: { AuthorizationCode: 60, IdToken: 600, AccessToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  });
  return provider;
}

let current = build();

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

function send(res, status, type, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.end(body);
}

function loginPage(uid, error) {
  return `<!doctype html><html><head><title>Test provider sign-in</title></head><body>
<h1>Test identity provider</h1>${error ? `<p id="error">${error}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label for="login">User name</label><input id="login" name="login" autofocus>
<button type="submit">Continue</button></form></body></html>`;
}

async function interaction(req, res, uid, submitted) {
  const details = await current.interactionDetails(req, res);
  if (!submitted) return send(res, 200, 'text/html', loginPage(uid));
  const login = new URLSearchParams(await readBody(req)).get('login') ?? '';
  if (!accounts[login]) return send(res, 200, 'text/html', loginPage(uid, 'unknown user'));
  const grant = new current.Grant({ accountId: login, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope));
  const grantId = await grant.save();
  return current.interactionFinished(
    req,
    res,
    { login: { accountId: login }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

async function control(req, res, path) {
  const body = req.method === 'POST' ? await readBody(req) : '';
  let match = path.match(/^\/__control\/accounts\/([^/]+)$/);
  if (match) {
    accounts[match[1]] = JSON.parse(body);
    return send(res, 200, 'application/json', '{}');
  }
  match = path.match(/^\/__control\/clients\/([^/]+)\/groups$/);
  if (match) {
    clientGroups[match[1]] = JSON.parse(body);
    return send(res, 200, 'application/json', '{}');
  }
  if (path === '/__control/rotate') {
    keys = [newKey(), keys[0]];
    current = build();
    return send(res, 200, 'application/json', JSON.stringify({ kids: keys.map((k) => k.kid) }));
  }
  return send(res, 404, 'text/plain', 'no such control');
}

const server = http.createServer(async (req, res) => {
  try {
    const path = new URL(req.url, issuer).pathname;
    if (path.startsWith('/__control/')) return await control(req, res, path);
    const match = path.match(/^\/interaction\/([^/]+)(\/login)?$/);
    if (match) return await interaction(req, res, match[1], Boolean(match[2]));
    return current.callback()(req, res);
  } catch (error) {
    return send(res, 500, 'text/plain', String(error));
  }
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
