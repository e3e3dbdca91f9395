/**
 * A stand-in for the X-Ray daemon Lambda runs beside a traced function: a UDP socket on loopback
 * that keeps every segment document the X-Ray SDK sends it (AWS_XRAY_DAEMON_ADDRESS).
 */
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';

export interface XraySegmentDocument {
  name: string;
  id: string;
  trace_id?: string;
  parent_id?: string;
  type?: string;
  start_time: number;
  end_time?: number;
  error?: boolean;
  fault?: boolean;
  annotations?: Record<string, string | number | boolean>;
  metadata?: Record<string, Record<string, unknown>>;
  subsegments?: XraySegmentDocument[];
}

export interface XrayDaemon {
  /** `127.0.0.1:<port>`, for AWS_XRAY_DAEMON_ADDRESS. */
  readonly address: string;
  /** Every document received, subsegments of the received ones included, in order. */
  readonly documents: XraySegmentDocument[];
  /** The raw datagrams, for scanning. */
  readonly datagrams: string[];
  close(): Promise<void>;
}

function flatten(document: XraySegmentDocument): XraySegmentDocument[] {
  return [document, ...(document.subsegments ?? []).flatMap(flatten)];
}

export async function startXrayDaemon(): Promise<XrayDaemon> {
  const socket: Socket = createSocket('udp4');
  const documents: XraySegmentDocument[] = [];
  const datagrams: string[] = [];
  socket.on('message', (message) => {
    const text = message.toString('utf8');
    datagrams.push(text);
    // A header line ({"format": "json", "version": 1}), then the document.
    const body = text.slice(text.indexOf('\n') + 1);
    documents.push(...flatten(JSON.parse(body) as XraySegmentDocument));
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    documents,
    datagrams,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}
