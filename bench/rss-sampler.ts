/**
 * Samples the process's memory while a scenario runs (maxRSS of the OS cannot be reset between
 * scenarios); `stop` gives the usage at the sample of the highest resident set size, and when it was taken
 * (ms from the start), to be read beside the statement trace.
 */
export function sampleRss(intervalMs = 20): { stop(): NodeJS.MemoryUsage & { atMs: number } } {
  const started = performance.now();
  let peak = { ...process.memoryUsage(), atMs: 0 };
  const sample = () => {
    const now = process.memoryUsage();
    if (now.rss > peak.rss) peak = { ...now, atMs: performance.now() - started };
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
