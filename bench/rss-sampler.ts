/**
 * Samples the process's memory while a scenario runs (maxRSS of the OS cannot be reset between
 * scenarios); `stop` gives the usage at the sample of the highest resident set size.
 */
export function sampleRss(intervalMs = 20): { stop(): NodeJS.MemoryUsage } {
  let peak = process.memoryUsage();
  const sample = () => {
    const now = process.memoryUsage();
    if (now.rss > peak.rss) peak = now;
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
