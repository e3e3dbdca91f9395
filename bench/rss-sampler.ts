/**
 * Samples the process's resident set size while a scenario runs; maxRSS of the OS cannot be reset
 * between scenarios. `atPeak` is the process's memory usage at the highest sample.
 */
export function sampleRss(intervalMs = 20): { stop(): number; atPeak(): NodeJS.MemoryUsage } {
  let usage = process.memoryUsage();
  let peak = usage.rss;
  const timer = setInterval(() => {
    const now = process.memoryUsage();
    if (now.rss > peak) {
      peak = now.rss;
      usage = now;
    }
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage.rss());
    },
    atPeak: () => usage,
  };
}
