/**
 * What the sync function's bundle has in place of four links of the AWS SDK's default credential
 * chain (@aws-sdk/credential-provider-node): shared profiles, SSO, `credential_process` and a web
 * identity token file. Lambda has none of them: it gives the function its role's credentials in
 * the environment (the chain's first link), or, where it serves them over HTTP, through
 * AWS_CONTAINER_CREDENTIALS_FULL_URI (the chain's last link). Both stay in the bundle.
 *
 * These four pulled 118 KiB into the bundle: the STS, SSO, SSO-OIDC and sign-in clients, with the
 * XML and query protocols of STS. Each link here declines and lets the chain try the next one, as
 * a link that finds nothing to read does. Only the bundle uses this file (functions/sync/bundling.ts):
 * the CLI, and the tests that run from source, keep the whole chain.
 */

class NotInTheBundle extends Error {
  override readonly name = 'CredentialsProviderError';
  /** What the SDK's chain looks for: go on to the next link. */
  readonly tryNextLink = true;
}

type Provider = (init?: unknown) => () => Promise<never>;

const notBundled =
  (source: string): Provider =>
  () =>
  async () => {
    throw new NotInTheBundle(`${source} credentials are not in the sync function's bundle`);
  };

export const fromIni = notBundled('shared profile (AWS_PROFILE, ~/.aws/config)');
export const fromSSO = notBundled('SSO');
export const fromProcess = notBundled('credential_process');
export const fromTokenFile = notBundled('web identity token file');
