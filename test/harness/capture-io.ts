/** The CLI's stdout and stderr as strings, for a `main()` run in the test's own process. */
import type { CliIo } from '../../lib/cli/main';

export function captureIo(): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const stream = (append: (s: string) => void) =>
    ({
      isTTY: false,
      write: (chunk: string) => {
        append(String(chunk));
        return true;
      },
    }) as unknown as NodeJS.WriteStream;
  return {
    stdout: stream((s) => (out += s)),
    stderr: stream((s) => (err += s)),
    out: () => out,
    err: () => err,
  };
}
