/**
 * A test token server for the distribution token-auth flow (issue 3), loopback only. The real
 * `docker-registry` is configured with `auth: token: {realm, service, issuer, rootcertbundle}`
 * (see {@link TokenServer.registryYaml}); it answers 401 with a `Bearer realm=…,service=…,scope=…`
 * challenge, the client asks this server `GET /token?service=&scope=…` (optionally with basic
 * credentials), and gets an RS256 JWT whose header carries the signing certificate (`x5c`), which
 * the registry verifies against the root bundle (the self-signed certificate made here with openssl).
 * Claims as distribution 2.8 checks them: iss, sub, aud (= service), exp, nbf, iat, jti and
 * `access: [{type, name, actions}]`, granted per repository by {@link Grant} rules.
 * Every token request is recorded (who asked, which scopes, what was granted) for the tests.
 */
import { execFileSync } from 'node:child_process';
import { createSign, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';

/** Actions a user (or everyone: `user: '*'`; anonymous only: `user: ''`) gets on repositories starting with `prefix`. */
export interface Grant {
  user: string;
  prefix: string;
  actions: string[];
}

/** One resource/actions entry of a token (the JWT `access` claim). */
export interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** One recorded token request. */
export interface TokenRequest {
  /** The basic-auth user, or '' when anonymous. */
  user: string;
  /** `scope` query parameters, as sent (each may hold several space-separated scopes). */
  scopes: string[];
  service: string;
  /** HTTP status answered (401 for bad credentials). */
  status: number;
  granted: Access[];
  at: number;
}

/** The registry's distribution 2.8 clock leeway on exp/nbf (registry/auth/token/token.go). */
const REGISTRY_LEEWAY_S = 60;

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** A loopback token server; {@link start} makes its key and certificate under `dir`. */
export class TokenServer {
  readonly requests: TokenRequest[] = [];
  /**
   * Token lifetime in seconds (`expires_in`). The token's `exp` is set so that the registry,
   * which accepts tokens up to 60 s past `exp`, really refuses it after this many seconds.
   */
  ttlSeconds = 300;
  readonly service = 'berth-test-registry';
  readonly issuer = 'berth-test-issuer';
  port = 0;
  private server: Server | undefined;
  private keyPem = '';
  private certDerB64 = '';
  readonly certFile: string;

  constructor(private readonly dir: string, private readonly users: Record<string, string>, private readonly grants: Grant[]) {
    this.certFile = join(dir, 'token-root.pem');
  }

  /** Make the RSA key and self-signed certificate (openssl) and listen on a free loopback port. */
  async start(): Promise<void> {
    const keyFile = join(this.dir, 'token-key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', this.certFile, '-days', '2', '-subj', '/CN=berth-test-token-issuer'], { stdio: 'ignore' });
    this.keyPem = readFileSync(keyFile, 'utf8');
    this.certDerB64 = new X509Certificate(readFileSync(this.certFile)).raw.toString('base64');
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }

  get realm(): string {
    return `http://127.0.0.1:${this.port}/token`;
  }

  /** The `auth:` section for the registry's config.yml. */
  registryYaml(): string {
    return ['auth:', '  token:', `    realm: ${this.realm}`, `    service: ${this.service}`, `    issuer: ${this.issuer}`, `    rootcertbundle: ${this.certFile}`].join('\n');
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Requests that asked for a scope matching `re` (any of their scope parameters). */
  asking(re: RegExp): TokenRequest[] {
    return this.requests.filter((r) => r.scopes.some((s) => s.split(' ').some((x) => re.test(x))));
  }

  /** The actions `user` may do on `repo` (union of the matching grants). */
  allowed(user: string, repo: string): Set<string> {
    const out = new Set<string>();
    for (const g of this.grants) {
      if ((g.user === '*' || g.user === user) && repo.startsWith(g.prefix)) for (const a of g.actions) out.add(a);
    }
    return out;
  }

  /** Sign a token for `user` with these access entries (RS256, x5c = the root certificate). */
  sign(user: string, access: Access[]): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [this.certDerB64] };
    const claims = {
      iss: this.issuer,
      sub: user,
      aud: this.service,
      exp: now + this.ttlSeconds - REGISTRY_LEEWAY_S,
      nbf: now - 5,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(input).sign(this.keyPem);
    return `${input}.${b64url(sig)}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token' || req.method !== 'GET') return send(404, { details: 'not found' });
    const rec: TokenRequest = { user: '', scopes: url.searchParams.getAll('scope'), service: url.searchParams.get('service') ?? '', status: 0, granted: [], at: Date.now() };
    this.requests.push(rec);
    const auth = req.headers.authorization;
    if (auth) {
      const m = /^Basic\s+(.+)$/i.exec(auth);
      const [user, ...rest] = m ? Buffer.from(m[1]!, 'base64').toString('utf8').split(':') : [''];
      rec.user = user ?? '';
      if (!m || !user || this.users[user] === undefined || this.users[user] !== rest.join(':')) {
        rec.status = 401;
        return send(401, { details: 'incorrect username or password' });
      }
    }
    if (rec.service !== this.service) {
      rec.status = 400;
      return send(400, { details: `unknown service ${rec.service}` });
    }
    // grant the intersection of what was asked and what the rules allow (like Docker Hub: never an error for too little)
    const byRepo = new Map<string, Set<string>>();
    for (const s of rec.scopes.flatMap((x) => x.split(' ')).filter(Boolean)) {
      const parts = s.split(':');
      if (parts.length < 3 || parts[0] !== 'repository') continue;
      const actions = parts.pop()!.split(',');
      const name = parts.slice(1).join(':');
      const may = this.allowed(rec.user, name);
      const set = byRepo.get(name) ?? new Set<string>();
      for (const a of actions) if (may.has(a)) set.add(a);
      byRepo.set(name, set);
    }
    rec.granted = [...byRepo].filter(([, a]) => a.size > 0).map(([name, a]) => ({ type: 'repository', name, actions: [...a].sort() }));
    rec.status = 200;
    const token = this.sign(rec.user, rec.granted);
    send(200, { token, access_token: token, expires_in: this.ttlSeconds, issued_at: new Date().toISOString() });
  }
}
