/** The `sslmode` values meter-sync takes, apart from the CA certificates (tls.ts), so the CLI can check a URL cheaply. */

/** The libpq `sslmode` values meter-sync supports; `allow` and `prefer` fall back to clear text, so they are refused. */
export const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export function isSslMode(value: unknown): value is SslMode {
  return typeof value === 'string' && (SSL_MODES as readonly string[]).includes(value);
}

/** Why a URL's `sslmode` is refused, or undefined when it is one meter-sync supports (or none). */
export function unsupportedSslMode(url: string): string | undefined {
  let sslmode: string | null;
  try {
    sslmode = new URL(url).searchParams.get('sslmode');
  } catch {
    return undefined;
  }
  if (sslmode === null || isSslMode(sslmode)) return undefined;
  const modes = SSL_MODES.join(', ');
  return sslmode === 'allow' || sslmode === 'prefer'
    ? `sslmode "${sslmode}" falls back to clear text; use one of ${modes}`
    : `sslmode ${JSON.stringify(sslmode.slice(0, 20))} is not one of ${modes}`;
}
