import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import type { StatsCounter } from '../stats.js';
import { credentialProviders, nodeHttpHandler, S3 } from './sdk.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3ClientOptions {
  region?: string;
  /** Custom endpoint for non-AWS stores (MinIO, Ceph, B2, R2, Wasabi, Spaces...). */
  endpoint?: string;
  /** Path-style addressing (bucket in the path); most non-AWS servers need it. */
  forcePathStyle?: boolean;
  /** Explicit keys; otherwise the AWS default chain (env, profile/SSO, web identity, ECS, IMDS). */
  credentials?: S3Credentials;
  /** A named profile from ~/.aws/config or ~/.aws/credentials. */
  profile?: string;
  /** Attempts per request, the first included (transient errors only). */
  maxAttempts?: number;
  /** Sockets kept per host: at least the upload concurrency. */
  maxSockets?: number;
  connectTimeoutMs?: number;
  /**
   * Time without a byte sent or received on an open request before it is abandoned and retried
   * (a server that stops answering). Not a cap on the whole request: a large part over a slow or
   * throttled link may take longer than this.
   */
  idleTimeoutMs?: number;
}

export const DEFAULT_REGION = 'us-east-1';
export const DEFAULT_MAX_ATTEMPTS = 5;

/**
 * Builds an S3Client that works unchanged on AWS and on S3-compatible servers:
 * - checksums only where an operation requires one: with the SDK default (CRC32 on every
 *   upload, aws-chunked stream encoding) many servers, RGW 16.2 among them, answer 411;
 * - the SDK's standard retry strategy (exponential backoff with full jitter; 5xx, throttling,
 *   timeouts and connection resets are retried, 4xx never);
 * - every attempt counted by operation, so callers see what a run really cost.
 */
export function createS3Client(opts: S3ClientOptions, counter: StatsCounter): { client: S3Client; credentialSource: () => string } {
  const maxSockets = opts.maxSockets ?? 64;
  const credentialSourceLabel = opts.credentials ? 'the explicit options' : opts.profile ? `profile "${opts.profile}"` : undefined;
  let resolvedSource: string | undefined;
  const chain = opts.credentials ? undefined : credentialProviders.fromNodeProviderChain(opts.profile ? { profile: opts.profile } : {});
  const config: S3ClientConfig = {
    region: opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? DEFAULT_REGION,
    forcePathStyle: opts.forcePathStyle ?? false,
    maxAttempts: opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new nodeHttpHandler.NodeHttpHandler({
      connectionTimeout: opts.connectTimeoutMs ?? 10_000,
      // socketTimeout is an inactivity timer that fails the attempt (TimeoutError, retried).
      // requestTimeout would cap the whole request and, by default, only log a warning while
      // the request hangs for ever.
      socketTimeout: opts.idleTimeoutMs ?? 120_000,
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
    }),
    credentials: opts.credentials
      ? { ...opts.credentials }
      : async () => {
          const creds = await chain!();
          resolvedSource ??= describeCredentialSource(creds as unknown as Record<string, unknown>);
          return creds;
        },
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
  };
  const client = new S3.S3Client(config);
  // In the deserialize step, inside the retry loop: one count per attempt, as the store bills it.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      counter.request(String(context.commandName ?? 'Unknown').replace(/Command$/, ''));
      return next(args);
    },
    { step: 'deserialize', name: 'offsiteRequestCounter', priority: 'high' },
  );
  return { client, credentialSource: () => credentialSourceLabel ?? resolvedSource ?? describeEnvironmentCredentials() };
}

/** The SDK marks resolved credentials with the provider that produced them ($source). */
function describeCredentialSource(creds: Record<string, unknown>): string {
  const source = creds['$source'] as Record<string, unknown> | undefined;
  const features = source ? Object.keys(source) : [];
  const names: Record<string, string> = {
    CREDENTIALS_ENV_VARS: 'the environment (AWS_ACCESS_KEY_ID)',
    CREDENTIALS_ENV_VARS_STS_WEB_ID_TOKEN: 'a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)',
    CREDENTIALS_PROFILE: `the shared config profile "${process.env.AWS_PROFILE ?? 'default'}"`,
    CREDENTIALS_PROFILE_SOURCE_PROFILE: 'a chained profile',
    CREDENTIALS_PROFILE_SSO: 'AWS SSO (profile)',
    CREDENTIALS_SSO: 'AWS SSO',
    CREDENTIALS_PROFILE_PROCESS: 'a credential_process in the profile',
    CREDENTIALS_HTTP: 'the container (ECS) credentials endpoint',
    CREDENTIALS_IMDS: 'the EC2 instance role (IMDS)',
  };
  for (const f of features) if (names[f]) return names[f];
  return describeEnvironmentCredentials();
}

function describeEnvironmentCredentials(): string {
  if (process.env.AWS_ACCESS_KEY_ID) return 'the environment (AWS_ACCESS_KEY_ID)';
  if (process.env.AWS_PROFILE) return `profile "${process.env.AWS_PROFILE}"`;
  return 'the AWS default credential chain';
}
