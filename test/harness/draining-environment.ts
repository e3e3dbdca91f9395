/**
 * The tests' environment: Node's, which at the end of each test file waits (at most 2 s) for the
 * handles the file opened to close, and names the file and any handle still open. A handle left
 * open keeps the jest worker alive past its exit grace (500 ms), and jest's warning then ("A
 * worker process has failed to exit gracefully") says neither which file nor what. Handles are
 * counted by kind against those open when the file started (a timer left running can hide
 * behind one of jest's own that ended; servers, sockets and child processes cannot).
 */
import { relative } from 'node:path';
import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import { TestEnvironment } from 'jest-environment-node';

const DRAIN_MS = 2_000;

/** Each kind of handle open now beyond those open in `before`, with how many more. */
function openedSince(before: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  for (const kind of before) counts.set(kind, (counts.get(kind) ?? 0) - 1);
  return [...counts].filter(([, n]) => n > 0).map(([kind, n]) => (n > 1 ? `${n} ${kind}` : kind));
}

export default class DrainingEnvironment extends TestEnvironment {
  private readonly testPath: string;
  private before: string[] = [];

  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    super(config, context);
    this.testPath = context.testPath;
  }

  override async setup(): Promise<void> {
    await super.setup();
    this.before = process.getActiveResourcesInfo();
  }

  override async teardown(): Promise<void> {
    // A child process reaped, a server or socket closing, a file read the AWS SDK started: each
    // ends within milliseconds of the file's last test, which need not have waited for it.
    const deadline = Date.now() + DRAIN_MS;
    let open = openedSince(this.before);
    while (open.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10).unref());
      open = openedSince(this.before);
    }
    if (open.length > 0) {
      process.stderr.write(
        `${relative(process.cwd(), this.testPath)} left open after its tests: ${open.join(', ')}\n`,
      );
    }
    await super.teardown();
  }
}
