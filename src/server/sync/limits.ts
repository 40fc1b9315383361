// What one client can make `offsite serve` hold in memory. Three bounds, each cheap to check
// before the work they guard:
// - a body limit per endpoint (routes.ts), refused with 413 from its Content-Length before
//   a byte is read;
// - a count of JSON values: parsed JSON takes ~15 times its text for small values (a 62 MB map
//   of ids held ~790 MB), so a body with more separators than any real request has is refused
//   with 400 before JSON.parse; the schemas' size limits only apply after parsing;
// - requests in flight: at most `maxRequests`, and at most `maxBodyBytes` of bodies (each
//   request counts its Content-Length, or its endpoint's limit when it sends none). Beyond
//   that the answer is 503 with Retry-After, which HttpBackend retries.

/** Requests served at once. */
export const DEFAULT_MAX_REQUESTS_IN_FLIGHT = 32;
/** Bytes of request bodies at once: one snapshot of the default limit and many small requests. */
export const DEFAULT_MAX_BODY_BYTES_IN_FLIGHT = 96 * 1024 * 1024;
/** Separators (, : [ {) in one body: a map of 10,000 devices has 20,000; sealed data has none. */
export const MAX_JSON_SEPARATORS = 50_000;
/** Seconds a client turned away is asked to wait. */
export const BUSY_RETRY_AFTER_SECONDS = 1;

const COMMA = 0x2c;
const COLON = 0x3a;
const BRACKET = 0x5b;
const BRACE = 0x7b;

/** Whether `body` has more than `max` JSON separators (stops counting there). */
export function tooManyJsonValues(body: Buffer, max = MAX_JSON_SEPARATORS): boolean {
  let n = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === COMMA || c === COLON || c === BRACKET || c === BRACE) {
      if (++n > max) return true;
    }
  }
  return false;
}

/** Counts requests and body bytes in flight; `admit` either reserves room or says no. */
export class InFlightLimiter {
  private requests = 0;
  private bytes = 0;

  constructor(
    private readonly maxRequests = DEFAULT_MAX_REQUESTS_IN_FLIGHT,
    private readonly maxBodyBytes = DEFAULT_MAX_BODY_BYTES_IN_FLIGHT,
  ) {}

  /**
   * Reserves room for a request of `bodyBytes`, returning the function that gives it back
   * (call it once, when the request ends however it ends), or undefined when the server is
   * full. A request alone is always admitted, so a body up to its endpoint's limit can pass.
   */
  admit(bodyBytes: number): (() => void) | undefined {
    if (this.requests >= this.maxRequests) return undefined;
    if (this.requests > 0 && this.bytes + bodyBytes > this.maxBodyBytes) return undefined;
    this.requests++;
    this.bytes += bodyBytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.requests--;
      this.bytes -= bodyBytes;
    };
  }

  get inFlight(): { requests: number; bytes: number } {
    return { requests: this.requests, bytes: this.bytes };
  }
}
