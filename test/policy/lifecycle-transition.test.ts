// A lifecycle rule really moving a tagged object, on the real Ceph RGW: the test server runs with
// `rgw lc debug interval = 10`, so one lifecycle "day" is 10 s and the lifecycle thread runs
// every 10 s. Only the tagged object under the prefix may move.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { applyLifecycle } from '../../src/policy/index.js';
import { createTestBucket, openTestS3 } from '../support/env.js';

const POLL_MS = 2000;
const LIMIT_MS = 90_000;

it('a tag rule moves the tagged object to GLACIER after one (10 s) day; untagged and out-of-prefix objects stay', async (t) => {
  const bucket = await createTestBucket('lifecycle-run');
  const storage = openTestS3(bucket, { prefix: 'archive/' });
  const whole = openTestS3(bucket);
  try {
    await applyLifecycle(storage, [{ tag: { key: 'backup', value: 'deep-archive' }, storageClass: 'GLACIER', days: 1 }]);
    const t0 = Date.now();
    await storage.put('tagged.tar', 'tagged archive', { tags: { backup: 'deep-archive' } });
    await storage.put('plain.tar', 'untagged archive');
    await whole.put('elsewhere/tagged.tar', 'tagged, outside the prefix', { tags: { backup: 'deep-archive' } });

    let tagged = await storage.head('tagged.tar');
    while (tagged.storageClass !== 'GLACIER' && Date.now() - t0 < LIMIT_MS) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      tagged = await storage.head('tagged.tar');
    }
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    assert.equal(
      tagged.storageClass,
      'GLACIER',
      `not moved after ${seconds} s: is the RGW lifecycle thread running (rgw lc debug interval), and does radosgw-admin lc list show the bucket?`,
    );
    t.diagnostic(`tagged object moved to GLACIER ${seconds} s after the put`);
    assert.equal((await storage.head('plain.tar')).storageClass, 'STANDARD', 'untagged objects stay');
    assert.equal((await whole.head('elsewhere/tagged.tar')).storageClass, 'STANDARD', 'objects outside the prefix stay');
    assert.deepEqual(await storage.getTags('tagged.tar'), { backup: 'deep-archive' }, 'the transition keeps the tags');
  } finally {
    await storage.close();
    await whole.close();
  }
});
