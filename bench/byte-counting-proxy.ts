/**
 * A loopback TCP proxy in front of a PostgreSQL server that counts the bytes the server sends:
 * "bytes read from the remote", measured on the socket.
 *
 * It runs in a child process of its own. In the bench's process every byte of the remote would pass
 * through Node.js twice, once in the proxy and once in the engine, and the proxy's socket buffers
 * would count in the peak RSS the bench reports for the engine; the function has no proxy.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

export interface ByteCountingProxy {
  readonly port: number;
  /** Bytes sent by the server to clients since the last reset. */
  bytesFromServer(): Promise<number>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Set in the proxy's child process: where the server is, `host:port`. */
export const PROXY_CHILD_ENV = 'METER_SYNC_BENCH_PROXY_TARGET';

type Request = { id: number; type: 'reset' | 'bytes' };
type Reply = { id: number; bytes: number } | { type: 'listening'; port: number };

/** The proxy in this process (a test's, or the child's own): listens on a free loopback port. */
export async function startInProcessProxy(
  targetHost: string,
  targetPort: number,
): Promise<ByteCountingProxy> {
  let bytes = 0;
  const sockets = new Set<Socket>();
  // No Nagle on either leg, as node-postgres and the server have none on theirs: with it, the small
  // writes that end a short COPY wait for an ACK the client delays by up to 40 ms, a stall a real
  // network path does not add (it cost the realistic tenant's 10-row run 80 ms of its 330).
  const server: Server = createServer({ noDelay: true }, (client) => {
    const upstream = tcpConnect({ port: targetPort, host: targetHost, noDelay: true });
    sockets.add(client);
    sockets.add(upstream);
    upstream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('proxy did not bind');
  return {
    port: address.port,
    bytesFromServer: async () => bytes,
    reset: async () => {
      bytes = 0;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** The child's side: runs the proxy and answers the bench's requests until the bench goes. */
export async function runByteCountingProxy(target: string): Promise<void> {
  const at = target.lastIndexOf(':');
  const proxy = await startInProcessProxy(target.slice(0, at), Number(target.slice(at + 1)));
  const send = (reply: Reply) => process.send?.(reply);
  process.on('message', async (request: Request) => {
    if (request.type === 'reset') await proxy.reset();
    send({ id: request.id, bytes: await proxy.bytesFromServer() });
  });
  // The bench gone (or done), the proxy goes too.
  process.on('disconnect', () => {
    void proxy.close().then(() => process.exit(0));
  });
  send({ type: 'listening', port: proxy.port });
}

/** Starts the proxy in a child process (the bench's own script, told so by PROXY_CHILD_ENV). */
export async function startByteCountingProxy(
  targetHost: string,
  targetPort: number,
): Promise<ByteCountingProxy> {
  const child: ChildProcess = fork(process.argv[1]!, [], {
    env: { ...process.env, [PROXY_CHILD_ENV]: `${targetHost}:${targetPort}` },
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting = new Map<number, (bytes: number) => void>();
  let nextId = 0;
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) =>
      reject(new Error(`byte-counting proxy exited (${code}) before it listened`)),
    );
    child.on('message', (reply: Reply) => {
      if ('port' in reply) resolve(reply.port);
      else waiting.get(reply.id)?.(reply.bytes);
    });
  });
  child.removeAllListeners('exit');
  const ask = (type: Request['type']) =>
    new Promise<number>((resolve) => {
      const id = nextId++;
      waiting.set(id, (bytes) => {
        waiting.delete(id);
        resolve(bytes);
      });
      child.send({ id, type } satisfies Request);
    });
  return {
    port,
    bytesFromServer: () => ask('bytes'),
    reset: async () => {
      await ask('reset');
    },
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.disconnect();
      }),
  };
}
