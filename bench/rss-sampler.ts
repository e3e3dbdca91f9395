/**
 * Samples the process's memory while a scenario runs (maxRSS of the OS cannot be reset between
 * scenarios); `stop` gives the usage at the sample of the highest resident set size, and when it was taken
 * (ms from the start), to be read beside the statement trace.
 */
import { readFileSync } from 'node:fs';

/** The resident set's anonymous and file-backed parts, in bytes, where /proc says (Linux). */
function residentParts(): { anon?: number; file?: number } {
  try {
    const status = readFileSync('/proc/self/status', 'latin1');
    const kb = (field: string) => {
      const found = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
      return found ? Number(found[1]) * 1024 : undefined;
    };
    return { anon: kb('RssAnon'), file: kb('RssFile') };
  } catch {
    return {};
  }
}

export type PeakUsage = NodeJS.MemoryUsage & { atMs: number; anon?: number; file?: number };

export function sampleRss(intervalMs = 20): { stop(): PeakUsage } {
  const started = performance.now();
  let peak: PeakUsage = { ...process.memoryUsage(), atMs: 0, ...residentParts() };
  const sample = () => {
    const now = process.memoryUsage();
    if (now.rss > peak.rss) peak = { ...now, atMs: performance.now() - started, ...residentParts() };
  };
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}
