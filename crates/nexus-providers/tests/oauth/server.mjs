// A real OAuth 2.0 / OpenID Connect server for Nexus's tests: npm's
// oidc-provider, on loopback, with PKCE required, the device flow, refresh
// token rotation and revocation. The "user" is automated: the interaction
// page logs in as alice and consents at once, or denies when the
// authorization request carries login_hint=deny. Device codes are approved
// or denied through POST /test/device.
//
// Prints one JSON line, {"issuer": "..."}, then serves until stdin closes.

import http from 'node:http';
import Provider from 'oidc-provider';

const server = http.createServer();
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const client = (id, extra = {}) => ({
  client_id: id,
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/callback'],
  ...extra,
});

const provider = new Provider(issuer, {
  clients: [client('nexus-test'), client('nexus-short-code'), client('nexus-short-token')],
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'api'],
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
  },
  issueRefreshToken: async () => true,
  rotateRefreshToken: () => true,
  ttl: {
    AuthorizationCode: (ctx, token, c) => (c.clientId === 'nexus-short-code' ? 1 : 60),
    AccessToken: (ctx, token, c) => (c.clientId === 'nexus-short-token' ? 5 : 3600),
    RefreshToken: 3600,
    DeviceCode: 600,
    Grant: 3600,
    Interaction: 600,
    Session: 3600,
  },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

// Loopback redirects on any port and any path under /callback/ (RFC 8252:
// native apps pick an ephemeral port; Nexus also randomizes the path).
provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(uri) {
  try {
    const u = new URL(uri);
    return u.protocol === 'http:' && u.hostname === '127.0.0.1' && u.pathname.startsWith('/callback/');
  } catch {
    return false;
  }
};

async function grantFor(clientId, scope) {
  const grant = new provider.Grant({ accountId: 'alice', clientId });
  grant.addOIDCScope(scope || 'openid offline_access api');
  return grant.save();
}

provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const result = details.params.login_hint === 'deny'
      ? { error: 'access_denied', error_description: 'the user denied the request' }
      : {
        login: { accountId: 'alice' },
        consent: { grantId: await grantFor(details.params.client_id, details.params.scope) },
      };
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/test/device') {
    // Stored normalized: upper case, no separators.
    const userCode = String(ctx.query.user_code).toUpperCase().replace(/[^A-Z0-9]/g, '');
    const code = await provider.DeviceCode.findByUserCode(userCode, { ignoreExpiration: false });
    if (!code) {
      ctx.status = 404;
      ctx.body = { error: 'no such user code' };
      return;
    }
    if (ctx.query.deny === '1') {
      code.error = 'access_denied';
      code.errorDescription = 'the user denied the request';
    } else {
      code.accountId = 'alice';
      code.grantId = await grantFor(code.clientId, code.scope);
      code.authTime = Math.floor(Date.now() / 1000);
    }
    await code.save();
    ctx.body = { ok: true };
    return;
  }
  await next();
});

server.on('request', provider.callback());
// The parent reads one line and may close the pipe: later writes (warnings)
// must not kill the server.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
