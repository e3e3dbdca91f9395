/**
 * Captures what the process writes to stdout and stderr (Powertools writes its JSON log lines and
 * EMF documents there, through its own Console), and reads the EMF documents back out of it.
 */

export interface CapturedOutput {
  /** Every line written since the capture started, in order. */
  readonly lines: string[];
  restore(): void;
}

/** Starts capturing; the output is kept from the terminal until restore(). */
export function captureOutput(): CapturedOutput {
  const lines: string[] = [];
  const pending = { stdout: '', stderr: '' };
  const spies = (['stdout', 'stderr'] as const).map((name) =>
    jest.spyOn(process[name], 'write').mockImplementation(((chunk: string | Uint8Array) => {
      pending[name] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      const parts = pending[name].split('\n');
      pending[name] = parts.pop() ?? '';
      lines.push(...parts.filter((line) => line.length > 0));
      return true;
    }) as typeof process.stdout.write),
  );
  return {
    lines,
    restore() {
      for (const spy of spies) spy.mockRestore();
      for (const rest of Object.values(pending)) if (rest) lines.push(rest);
    },
  };
}

export interface MetricDocument {
  namespace: string;
  /** The dimension sets, as EMF lists them. */
  dimensions: string[][];
  /** The values of the dimensions named in the sets. */
  dimensionValues: Record<string, string>;
  /** Metric name to value. */
  values: Record<string, number>;
  units: Record<string, string>;
}

interface EmfDirective {
  Namespace: string;
  Dimensions: string[][];
  Metrics: { Name: string; Unit: string }[];
}

/** The EMF documents among output lines (JSON objects with an `_aws.CloudWatchMetrics` directive). */
export function metricDocuments(lines: readonly string[]): MetricDocument[] {
  const documents: MetricDocument[] = [];
  for (const line of lines) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    const aws = parsed._aws as { CloudWatchMetrics?: EmfDirective[] } | undefined;
    for (const directive of aws?.CloudWatchMetrics ?? []) {
      const dimensionValues: Record<string, string> = {};
      for (const name of directive.Dimensions.flat()) dimensionValues[name] = parsed[name] as string;
      const values: Record<string, number> = {};
      const units: Record<string, string> = {};
      for (const metric of directive.Metrics) {
        values[metric.Name] = parsed[metric.Name] as number;
        units[metric.Name] = metric.Unit;
      }
      documents.push({
        namespace: directive.Namespace,
        dimensions: directive.Dimensions,
        dimensionValues,
        values,
        units,
      });
    }
  }
  return documents;
}

/** The JSON log lines (not EMF) among output lines. */
export function logLines(lines: readonly string[]): Record<string, unknown>[] {
  const logs: Record<string, unknown>[] = [];
  for (const line of lines) {
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (parsed && typeof parsed === 'object' && !('_aws' in parsed)) logs.push(parsed);
    } catch {
      // not JSON: not a log line of ours
    }
  }
  return logs;
}
