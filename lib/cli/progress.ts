/** Shows which entity a long run is on, on one rewritten terminal line; silent when not a TTY. */
import type { ProgressEvent } from '../engine';

export function terminalProgress(stream: NodeJS.WriteStream): {
  onProgress?: (event: ProgressEvent) => void;
  done(): void;
} {
  if (!stream.isTTY) return { done() {} };
  const started = Date.now();
  const verbs = { read: 'reading remote', delete: 'deleting', upsert: 'writing' } as const;
  return {
    onProgress(event) {
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      stream.write(`\r\x1b[2K${seconds}s  ${event.entity}: ${verbs[event.phase]}…`);
    },
    done() {
      stream.write('\r\x1b[2K');
    },
  };
}
