// One node's S3 client, made on its first request: the AWS SDK and its HTTP handler are imported then, so a process
// that never talks to S3 does not pay for them (~0.13 s of start-up and a few MB of resident heap per process here,
// which also makes V8's full collections under bulk Buffer churn more frequent). Requests name their command; the
// input and output types are the SDK's.
import type * as Sdk from '@aws-sdk/client-s3';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

interface Commands {
  HeadBucket: [Sdk.HeadBucketCommandInput, Sdk.HeadBucketCommandOutput];
  HeadObject: [Sdk.HeadObjectCommandInput, Sdk.HeadObjectCommandOutput];
  GetObject: [Sdk.GetObjectCommandInput, Sdk.GetObjectCommandOutput];
  DeleteObject: [Sdk.DeleteObjectCommandInput, Sdk.DeleteObjectCommandOutput];
  ListObjectsV2: [Sdk.ListObjectsV2CommandInput, Sdk.ListObjectsV2CommandOutput];
  PutObject: [Sdk.PutObjectCommandInput, Sdk.PutObjectCommandOutput];
  CreateMultipartUpload: [Sdk.CreateMultipartUploadCommandInput, Sdk.CreateMultipartUploadCommandOutput];
  UploadPart: [Sdk.UploadPartCommandInput, Sdk.UploadPartCommandOutput];
  CompleteMultipartUpload: [Sdk.CompleteMultipartUploadCommandInput, Sdk.CompleteMultipartUploadCommandOutput];
  AbortMultipartUpload: [Sdk.AbortMultipartUploadCommandInput, Sdk.AbortMultipartUploadCommandOutput];
}
export type S3CommandName = keyof Commands;

export interface S3ClientSettings {
  endpoint: string;
  region: string;
  credentials: Sdk.S3ClientConfig['credentials'];
  forcePathStyle: boolean;
  requestTimeoutMs: number;
  maxSockets: number;
}

type Loaded = [typeof import('@aws-sdk/client-s3'), typeof import('@smithy/node-http-handler')];
let loading: Promise<Loaded> | undefined;
const loadSdk = () => (loading ??= Promise.all([import('@aws-sdk/client-s3'), import('@smithy/node-http-handler')]));

// Silent: with its default (no-op) logger the SDK still prints some notes to the console, e.g. on every failed
// streamed request ("non-retryable streaming request", though retries are ours); a logger of our own stops that, and
// its error() must be silent too (the SDK logs each failed command's input there). Failures reach the caller as
// StoreErrors.
const QUIET_LOGGER = { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

export class LazyS3Client {
  readonly #settings: S3ClientSettings;
  #client: Sdk.S3Client | undefined;

  constructor(settings: S3ClientSettings) {
    this.#settings = settings;
  }

  /**
   * Sends one command. `requestTimeout` overrides the handler's total-duration timeout for this request (0: none, for
   * a streamed body whose deadline the caller keeps by progress instead: s3-stream-writer.ts).
   */
  async send<K extends S3CommandName>(name: K, input: Commands[K][0], options: { abortSignal?: AbortSignal; requestTimeout?: number }): Promise<Commands[K][1]> {
    const [s3, http] = await loadSdk();
    const client = (this.#client ??= this.#make(s3, http));
    const Command = s3[`${name}Command`] as unknown as new (input: Commands[K][0]) => unknown;
    const send = client.send.bind(client) as unknown as (command: unknown, opts: { abortSignal?: AbortSignal; requestTimeout?: number }) => Promise<Commands[K][1]>;
    return send(new Command(input), options);
  }

  /** Closes the client's sockets (a later request makes a new client). */
  destroy(): void {
    this.#client?.destroy();
    this.#client = undefined;
  }

  #make(s3: Loaded[0], http: Loaded[1]): Sdk.S3Client {
    const o = this.#settings;
    const agentOptions = { keepAlive: true, maxSockets: o.maxSockets };
    return new s3.S3Client({
      endpoint: o.endpoint,
      region: o.region,
      credentials: o.credentials,
      forcePathStyle: o.forcePathStyle,
      // Retries are ours (s3-request.ts), so that backoff waits stay inside the call's deadline.
      maxAttempts: 1,
      // SDK defaults send bodies aws-chunked with trailing checksums, which RGW answers with 411.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      logger: QUIET_LOGGER,
      requestHandler: new http.NodeHttpHandler({
        requestTimeout: o.requestTimeoutMs,
        connectionTimeout: o.requestTimeoutMs,
        // Without it the SDK only warns when requestTimeout passes, and a hung node hangs the call.
        throwOnRequestTimeout: true,
        httpAgent: new HttpAgent(agentOptions),
        httpsAgent: new HttpsAgent(agentOptions),
      }),
    });
  }
}
