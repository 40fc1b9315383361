/**
 * Per-instance request accounting: how many requests of each kind a Storage made (retries
 * included: each attempt is a billed request) and how many body bytes went up and down.
 * Cost reports build on this.
 */
export interface RequestStats {
  /** Requests by operation name (PutObject, GetObject, ListObjectsV2, UploadPart, ...). */
  requests: Record<string, number>;
  totalRequests: number;
  bytesUp: number;
  bytesDown: number;
}

export class StatsCounter {
  private readonly requests = new Map<string, number>();
  private bytesUp = 0;
  private bytesDown = 0;

  request(operation: string): void {
    this.requests.set(operation, (this.requests.get(operation) ?? 0) + 1);
  }

  up(bytes: number): void {
    this.bytesUp += bytes;
  }

  down(bytes: number): void {
    this.bytesDown += bytes;
  }

  snapshot(): RequestStats {
    const requests = Object.fromEntries([...this.requests].sort(([a], [b]) => a.localeCompare(b)));
    const totalRequests = [...this.requests.values()].reduce((a, b) => a + b, 0);
    return { requests, totalRequests, bytesUp: this.bytesUp, bytesDown: this.bytesDown };
  }
}
