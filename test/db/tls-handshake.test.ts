/**
 * What each sslmode does on the wire, against a stand-in server that answers PostgreSQL's SSLRequest
 * and then presents a self-signed certificate (made with the openssl command; skipped without it).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { Client } from 'pg';
import { type SslMode, tlsOptions } from '../../lib/db/tls';

const SSL_REQUEST_CODE = 80_877_103;

function selfSignedCertificate(): { key: string; cert: string } | undefined {
  const folder = mkdtempSync(join(tmpdir(), 'meter-sync-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-keyout',
        join(folder, 'key.pem'),
        '-out',
        join(folder, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return {
      key: readFileSync(join(folder, 'key.pem'), 'utf8'),
      cert: readFileSync(join(folder, 'cert.pem'), 'utf8'),
    };
  } catch {
    return undefined;
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

const certificate = selfSignedCertificate();
const withOpenssl = certificate ? describe : describe.skip;

withOpenssl('sslmode on the wire', () => {
  let server: Server;
  const seen: ('ssl-request' | 'startup' | 'handshake')[] = [];

  beforeAll(async () => {
    server = createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', (packet) => {
        if (packet.length >= 8 && packet.readInt32BE(4) !== SSL_REQUEST_CODE) {
          seen.push('startup');
          socket.destroy();
          return;
        }
        seen.push('ssl-request');
        socket.write('S');
        const secure = new TLSSocket(socket, {
          isServer: true,
          key: certificate!.key,
          cert: certificate!.cert,
        });
        secure.on('error', () => {});
        secure.on('secure', () => {
          seen.push('handshake');
          secure.destroy();
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterAll(() => new Promise((resolve) => server.close(resolve)));

  beforeEach(() => {
    seen.length = 0;
  });

  async function connectWith(sslmode: SslMode): Promise<string> {
    const { port } = server.address() as AddressInfo;
    const client = new Client({
      host: '127.0.0.1',
      port,
      user: 'u',
      database: 'd',
      password: 'p',
      ssl: tlsOptions('127.0.0.1', sslmode),
      connectionTimeoutMillis: 5_000,
    });
    client.on('error', () => {});
    return client.connect().then(
      () => 'connected',
      (error: Error) => error.message,
    );
  }

  it('verify-full refuses a certificate no trusted CA signed', async () => {
    const outcome = await connectWith('verify-full');
    expect(outcome).toMatch(/self[- ]signed certificate/);
    expect(seen).toEqual(['ssl-request']);
  });

  it('verify-ca refuses it too', async () => {
    expect(await connectWith('verify-ca')).toMatch(/self[- ]signed certificate/);
  });

  it('require encrypts without checking the certificate', async () => {
    const outcome = await connectWith('require');
    expect(outcome).not.toMatch(/certificate/);
    expect(seen).toEqual(['ssl-request', 'handshake']);
  });

  it('disable sends the startup message in clear text', async () => {
    await connectWith('disable');
    expect(seen).toEqual(['startup']);
  });
});
