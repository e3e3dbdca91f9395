/**
 * A TCP proxy on loopback between the engine and a database, which can stop forwarding on command
 * or when the client sends a chosen statement: a network stall that only timeouts can end.
 *
 * While stalled, bytes in both directions are held (as packets that are not delivered), new
 * connections are accepted but not forwarded, and nothing is closed. When one side of a connection
 * closes, the other is closed too, as the peer's TCP stack would eventually learn it.
 */
import { createServer, type Server, Socket } from 'node:net';

export interface StallTrigger {
  /** Stall when a chunk from the client contains this (a statement's words, or `simpleQuery(…)`). */
  clientSends: string | Buffer;
  /**
   * `request`: the database never receives the statement; `response`: it runs, its answer is held;
   * `lose`: it runs, and when its answer comes the connection is closed instead (nothing stalls).
   */
  hold: 'request' | 'response' | 'lose';
  /** With `response`: this many bytes of the answer still get through before the stall (mid-COPY). */
  afterBytes?: number;
}

export interface TcpProxy {
  readonly port: number;
  /** `url` (a postgres:// URL of the target) pointing at the proxy instead. */
  via(url: string): string;
  /** Stops forwarding now, on every connection, current and new. */
  stall(): void;
  /** Stops forwarding when the trigger is met. */
  stallWhen(trigger: StallTrigger): void;
  /** Closes every open connection now (both sides); new ones are forwarded as before. */
  cut(): void;
  /** Connections closed by `cut()` or a `lose` trigger. */
  readonly cutCount: number;
  readonly stalled: boolean;
  /** Resolves once the proxy stalls. */
  whenStalled(): Promise<void>;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections whose two sides are both closed. */
  readonly closed: number;
  close(): Promise<void>;
}

/** The protocol message of a statement sent without parameters (`Q`, length, text, NUL): an exact match. */
export function simpleQuery(sql: string): Buffer {
  const text = Buffer.from(`${sql}\0`, 'utf8');
  const header = Buffer.alloc(5);
  header.write('Q', 0, 'ascii');
  header.writeUInt32BE(text.length + 4, 1);
  return Buffer.concat([header, text]);
}

interface Pair {
  client: Socket;
  server: Socket;
  /** Held bytes per direction while stalled. */
  held: { up: Buffer[]; down: Buffer[] };
  /** Its next answer from the database is dropped with the connection (a `lose` trigger). */
  loseAnswer?: boolean;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let stalled = false;
  let trigger: StallTrigger | undefined;
  /** Bytes of the answer still to forward before stalling, once a `response` trigger with `afterBytes` fired. */
  let budget: { pair: Pair; bytes: number } | undefined;
  let accepted = 0;
  let closed = 0;
  let cutCount = 0;
  const stallWaiters: (() => void)[] = [];

  function cutPair(pair: Pair): void {
    cutCount += 1;
    pair.client.destroy();
    pair.server.destroy();
  }

  function stallNow(): void {
    if (stalled) return;
    stalled = true;
    for (const wake of stallWaiters.splice(0)) wake();
  }

  const server: Server = createServer((client) => {
    accepted += 1;
    const upstream = new Socket();
    const pair: Pair = { client, server: upstream, held: { up: [], down: [] } };
    pairs.add(pair);
    let ended = 0;
    const onEnd = () => {
      ended += 1;
      if (ended === 2) {
        closed += 1;
        pairs.delete(pair);
      }
    };
    client.once('close', () => {
      upstream.destroy();
      onEnd();
    });
    upstream.once('close', () => {
      client.destroy();
      onEnd();
    });
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('data', (chunk: Buffer) => {
      if (!stalled && trigger && chunk.includes(trigger.clientSends)) {
        const { hold } = trigger;
        if (hold === 'lose') {
          upstream.write(chunk);
          pair.loseAnswer = true;
          trigger = undefined;
          return;
        }
        if (hold === 'response') upstream.write(chunk);
        else pair.held.up.push(chunk);
        if (hold === 'response' && trigger?.afterBytes) budget = { pair, bytes: trigger.afterBytes };
        else stallNow();
        trigger = undefined;
        return;
      }
      if (stalled) pair.held.up.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (pair.loseAnswer) {
        cutPair(pair);
        return;
      }
      if (!stalled && budget?.pair === pair) {
        const through = chunk.subarray(0, budget.bytes);
        client.write(through);
        budget.bytes -= through.length;
        if (budget.bytes > 0) return;
        budget = undefined;
        stallNow();
        chunk = chunk.subarray(through.length);
      }
      if (stalled) pair.held.down.push(chunk);
      else client.write(chunk);
    });
    // A connection accepted during a stall is not forwarded at all: its connect never completes.
    if (!stalled) upstream.connect(targetPort, targetHost);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('proxy has no port');
  const port = address.port;

  return {
    port,
    via(url: string) {
      const parsed = new URL(url);
      parsed.hostname = '127.0.0.1';
      parsed.port = String(port);
      return parsed.toString();
    },
    stall: stallNow,
    stallWhen(next: StallTrigger) {
      trigger = next;
    },
    get stalled() {
      return stalled;
    },
    whenStalled() {
      if (stalled) return Promise.resolve();
      return new Promise<void>((resolve) => {
        stallWaiters.push(resolve);
      });
    },
    cut() {
      for (const pair of pairs) cutPair(pair);
    },
    get cutCount() {
      return cutCount;
    },
    get accepted() {
      return accepted;
    },
    get closed() {
      return closed;
    },
    async close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.server.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
