/**
 * The parse of a COPY's protocol messages, over any chunking of the socket's bytes: the rows'
 * bytes come out exactly, other messages are skipped, and what follows the COPY's end (or an
 * error from its first byte on) goes back to pg untouched.
 */
import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import { copyOut } from '../../lib/db/copy-out';

/** A protocol message: its code, the int32 length counting itself, the body. */
function message(code: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(code, 0, 'latin1');
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** What the server sends after the COPY's end: CommandComplete and ReadyForQuery. */
const AFTER = Buffer.concat([message('C', Buffer.from('COPY 3\0')), message('Z', Buffer.from('T'))]);

type Sent = { data: Buffer } | { other: 'S' | 'N' | 'A' };

const sentMessage = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b): Sent => ({ data: Buffer.from(b) })) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<'S' | 'N' | 'A'>('S', 'N', 'A').map((other): Sent => ({ other })),
  },
);

interface Parsed {
  rows: Buffer;
  givenBack: Buffer;
  ended: boolean;
}

/** Feeds the bytes to the parse in chunks cut at `cuts`, as the library's reads of the socket would. */
async function parse(bytes: Buffer, cuts: readonly number[]): Promise<Parsed> {
  const stream = copyOut('COPY (SELECT 1) TO STDOUT') as unknown as EventEmitter & {
    connection: unknown;
    _pgDataHandler: (chunk: Buffer) => void;
    _parse(chunk: Buffer): boolean;
    on(event: 'data', listener: (chunk: Buffer) => void): void;
  };
  const givenBack: Buffer[] = [];
  const socket = Object.assign(new EventEmitter(), { resume: () => {}, read: () => null });
  stream.connection = { stream: socket };
  stream._pgDataHandler = (chunk) => givenBack.push(Buffer.from(chunk));
  const rows: Buffer[] = [];
  let ended = false;
  stream.on('data', (chunk) => rows.push(Buffer.from(chunk)));
  stream.once('end', () => {
    ended = true;
  });
  const offsets = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  let handedOver = false;
  for (const to of [...offsets, bytes.length]) {
    if (to <= from) continue;
    // Chunks are the parse's to change: it is given a copy, as the socket would give a fresh one.
    const chunk = Buffer.from(bytes.subarray(from, to));
    from = to;
    if (handedOver) givenBack.push(chunk);
    else if (stream._parse(chunk) === false && givenBack.length > 0) handedOver = true;
  }
  await new Promise((resolve) => setImmediate(resolve));
  return { rows: Buffer.concat(rows), givenBack: Buffer.concat(givenBack), ended };
}

function encode(sent: readonly Sent[]): { bytes: Buffer; rows: Buffer } {
  const messages = sent.map((m) =>
    'data' in m ? message('d', m.data) : message(m.other, Buffer.from(`${m.other} text\0`)),
  );
  const rows = Buffer.concat(sent.flatMap((m) => ('data' in m ? [m.data] : [])));
  return { bytes: Buffer.concat([message('H', Buffer.from([0, 0, 0])), ...messages]), rows };
}

const cuts = fc.array(fc.nat(), { maxLength: 40 });

describe('reading a COPY out of the protocol', () => {
  it('passes on exactly the rows, and gives back what follows the end of the COPY', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(sentMessage, { maxLength: 40 }), cuts, async (sent, at) => {
        const { bytes, rows } = encode(sent);
        const parsed = await parse(Buffer.concat([bytes, message('c', Buffer.alloc(0)), AFTER]), at);
        expect(parsed.rows.equals(rows)).toBe(true);
        expect(parsed.givenBack.equals(AFTER)).toBe(true);
        expect(parsed.ended).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('gives back an error from its first byte on, with the rows before it passed on', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(sentMessage, { maxLength: 40 }), cuts, async (sent, at) => {
        const { bytes, rows } = encode(sent);
        const error = Buffer.concat([
          message('E', Buffer.from('SERROR\0Mboom\0\0')),
          message('Z', Buffer.from('E')),
        ]);
        const parsed = await parse(Buffer.concat([bytes, error]), at);
        expect(parsed.rows.equals(rows)).toBe(true);
        expect(parsed.givenBack.equals(error)).toBe(true);
        expect(parsed.ended).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});
