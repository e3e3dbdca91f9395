/** A loopback TCP proxy in front of a PostgreSQL server that counts the bytes the server sends: "bytes read from the remote", measured on the socket. */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

export interface ByteCountingProxy {
  readonly port: number;
  /** Bytes sent by the server to clients since the last reset. */
  readonly bytesFromServer: number;
  reset(): void;
  close(): Promise<void>;
}

export async function startByteCountingProxy(
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
    get bytesFromServer() {
      return bytes;
    },
    reset() {
      bytes = 0;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
