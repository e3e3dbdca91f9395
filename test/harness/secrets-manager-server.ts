/**
 * A loopback Secrets Manager: answers GetSecretValue from a map of secret strings, as the service's
 * JSON protocol does, and records each request. Clients reach it through the SDK's own endpoint
 * setting (AWS_ENDPOINT_URL_SECRETS_MANAGER), signing with fake credentials.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SecretRequest {
  target: string | undefined;
  signed: boolean;
  secretId: string;
}

/** Answers GetSecretValue from a map of secret strings, as the Secrets Manager JSON protocol does. */
export function secretsManagerServer(
  secrets: Map<string, string>,
  requests: SecretRequest[],
): Promise<Server> {
  const server = createServer(async (request: IncomingMessage, response) => {
    let body = '';
    for await (const chunk of request) body += chunk;
    const { SecretId } = JSON.parse(body || '{}') as { SecretId: string };
    requests.push({
      target: request.headers['x-amz-target'] as string | undefined,
      signed: String(request.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 '),
      secretId: SecretId,
    });
    const secret = secrets.get(SecretId);
    response.setHeader('content-type', 'application/x-amz-json-1.1');
    if (request.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue' || secret === undefined) {
      response.statusCode = 400;
      response.end(
        JSON.stringify({
          __type: 'ResourceNotFoundException',
          message: "Secrets Manager can't find the specified secret.",
        }),
      );
      return;
    }
    response.end(
      JSON.stringify({
        ARN: `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${SecretId}-AbCdEf`,
        Name: SecretId,
        SecretString: secret,
        VersionId: '00000000-0000-4000-8000-000000000001',
        VersionStages: ['AWSCURRENT'],
        CreatedDate: 1_735_689_600,
      }),
    );
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** The SDK environment of a client that reaches this server: a region, fake keys it signs with, the endpoint. */
export function fakeAwsEnvironment(server: Server): NodeJS.ProcessEnv {
  return {
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    AWS_ENDPOINT_URL_SECRETS_MANAGER: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  };
}
