// The AWS SDK, loaded on first use: a command on an S3 URL pays for it (about 100 ms and 15 MB
// here), `offsite put` to a local directory bucket, and every process that never talks to S3,
// do not. Opening an S3 storage is synchronous and ESM cannot be imported synchronously, so these
// are the SDK's CommonJS builds, through require. A client of one build sends the commands of
// the other (tests and callers that import '@aws-sdk/client-s3' themselves still work); Offsite's
// own code takes every SDK value from here, so it loads one build only.
import { createRequire } from 'node:module';
import type * as ClientS3 from '@aws-sdk/client-s3';
import type * as CredentialProviders from '@aws-sdk/credential-providers';
import type * as Presigner from '@aws-sdk/s3-request-presigner';
import type * as NodeHttpHandlerModule from '@smithy/node-http-handler';

const require = createRequire(import.meta.url);

/** A module namespace whose module is required the first time one of its names is read. */
function onFirstUse<T extends object>(id: string): T {
  let loaded: T | undefined;
  return new Proxy({} as T, {
    get: (_target, name) => (loaded ??= require(id) as T)[name as keyof T],
  });
}

/** `@aws-sdk/client-s3`: `new S3.GetObjectCommand(...)`. */
export const S3 = onFirstUse<typeof ClientS3>('@aws-sdk/client-s3');
export const credentialProviders = onFirstUse<typeof CredentialProviders>('@aws-sdk/credential-providers');
export const presigner = onFirstUse<typeof Presigner>('@aws-sdk/s3-request-presigner');
export const nodeHttpHandler = onFirstUse<typeof NodeHttpHandlerModule>('@smithy/node-http-handler');
