/**
 * Collects every secret value a test file uses and everything the code under test produced (log
 * lines, errors, results), so the file's last test can prove no secret reached any of it.
 */
import { captureOutput } from '../observability/captured-output';

export class SecretScan {
  private readonly secrets = new Set<string>();
  private readonly produced: string[] = [];

  /** Registers a secret value (a password, a whole secret string) and returns it. */
  secret<T extends string>(value: T): T {
    this.secrets.add(value);
    return value;
  }

  /** Records something the code produced: a result, an error, a line. */
  record(value: unknown): void {
    if (typeof value === 'string') this.produced.push(value);
    else if (value instanceof Error) {
      this.produced.push(String(value), value.message, value.stack ?? '', JSON.stringify(value));
    } else this.produced.push(JSON.stringify(value) ?? String(value));
  }

  /** Runs `fn` with stdout and stderr captured; every line written is recorded, and returned. */
  async capture<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: unknown; lines: string[] }> {
    const output = captureOutput();
    try {
      const value = await fn();
      this.record(value);
      return { value, lines: output.lines };
    } catch (error) {
      this.record(error);
      return { error, lines: output.lines };
    } finally {
      output.restore();
      for (const line of output.lines) this.record(line);
    }
  }

  get counts(): { secrets: number; produced: number } {
    return { secrets: this.secrets.size, produced: this.produced.length };
  }

  /** Each secret with the texts that contain it (a short prefix of the secret only, for the report). */
  leaks(): { secret: string; texts: string[] }[] {
    const found: { secret: string; texts: string[] }[] = [];
    for (const secret of this.secrets) {
      const texts = this.produced.filter((text) => text.includes(secret));
      if (texts.length > 0) found.push({ secret: `${secret.slice(0, 4)}…`, texts: texts.slice(0, 3) });
    }
    return found;
  }
}
