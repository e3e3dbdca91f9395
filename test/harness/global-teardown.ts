/** Jest global teardown: stops the embedded server started by global setup, if any. */
export default async function globalTeardown(): Promise<void> {
  await globalThis.__METER_SYNC_SERVER__?.stop();
}
