// The seed's S3 design, rebuilt for the cost comparison (written for this bench from a reading
// of the seed, not copied): hiSHtory's S3 backend, ddworken/hishtory client/backend/s3_backend.go
// in the version whose QueryEntries reads the inbox and then deletes what it read (a later
// version keeps each inbox object until it was read 5 times, writing it back with a read count
// after each read: more requests still). Key layout, under the user id:
//   devices.json                                    every device; read-modify-write, no condition
//   entries/{YYYY-MM-DD}/{entryId}.json              one object per entry (the master copy)
//   inbox/{deviceId}/{YYYYMMDDTHHMMSSZ}_{entryId}.json  a copy for every other device
//   dump_requests/{deviceId}.json                   a joining device asks for the history
//   deletions/{deviceId}/...                        deletion requests, per device
// Each entry object is the seed's EncHistoryEntry shape: AES-256-GCM of the entry's JSON with
// the ids and the date beside it.
//
// Every request goes through one of two counting views, so one run gives two figures:
//   core    what issue #5 describes: register = GET + PUT devices.json; push = PUT the entry +
//           PUT a copy into each other device's inbox; pull = LIST own inbox, GET each object,
//           DELETE each (one DeleteObject per object, as the seed does).
//   extras  what the seed's code does beyond that: each push (SubmitEntries) first GETs
//           devices.json, and afterwards LISTs dump_requests/ and the device's deletions/ (the
//           submit response carries both); each pull (RetrieveAdditionalEntriesFromRemote)
//           also LISTs the device's deletions/ (ProcessDeletionRequests); a join PUTs a dump
//           request, which an existing device answers (LIST, GET, DELETE) at setup.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { isStorageError, type Storage } from '../../src/storage/index.js';
import type { ShellEntry } from './day.js';

interface DeviceList {
  devices: { device_id: string; user_id: string; registration_date: string }[];
}

/** The seed's EncHistoryEntry, as JSON. */
interface EncEntry {
  encrypted_data: string;
  nonce: string;
  device_id: string;
  user_id: string;
  date: string;
  encrypted_id: string;
  read_count: number;
  is_from_same_device: boolean;
}

const pad = (n: number) => String(n).padStart(2, '0');
const dayKey = (d: Date) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
const stampKey = (d: Date) => `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}T${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;

async function readAll(storage: Storage, key: string): Promise<Buffer | undefined> {
  try {
    const { body } = await storage.get(key);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
    return Buffer.concat(chunks);
  } catch (e) {
    if (isStorageError(e, 'NotFound')) return undefined;
    throw e;
  }
}

async function listKeys(storage: Storage, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of storage.list({ prefix })) if (e.type === 'object') keys.push(e.key);
  return keys;
}

export class SeedDevice {
  /** Entries this device holds (its own and what it pulled), by id. */
  readonly entries = new Map<string, ShellEntry>();
  private readonly key: Buffer;

  constructor(
    /** Requests of the model of the seed. */
    private readonly core: Storage,
    /** Requests the seed's code makes beyond that model. */
    private readonly extras: Storage,
    readonly userId: string,
    readonly deviceId: string,
    secret: string,
    private readonly clock: () => number,
  ) {
    this.key = createHash('sha256').update(`encryption_key:${secret}`).digest();
  }

  private k(...parts: string[]): string {
    return [this.userId, ...parts].join('/');
  }

  private async devices(storage: Storage): Promise<DeviceList> {
    const body = await readAll(storage, this.k('devices.json'));
    return body ? (JSON.parse(body.toString('utf8')) as DeviceList) : { devices: [] };
  }

  /** RegisterDevice: read devices.json, add this device, write it back; ask for a dump if others exist. */
  async register(): Promise<void> {
    const list = await this.devices(this.core);
    if (list.devices.some((d) => d.device_id === this.deviceId)) return;
    const others = list.devices.length;
    list.devices.push({ device_id: this.deviceId, user_id: this.userId, registration_date: new Date(this.clock()).toISOString() });
    await this.core.put(this.k('devices.json'), JSON.stringify(list));
    if (others > 0) {
      const dump = { user_id: this.userId, requesting_device_id: this.deviceId, request_time: new Date(this.clock()).toISOString() };
      await this.extras.put(this.k('dump_requests', `${this.deviceId}.json`), JSON.stringify(dump));
    }
  }

  /** What an existing device does with dump requests: send its history to the new device's inbox, then delete the request. */
  async answerDumpRequests(): Promise<number> {
    let answered = 0;
    for (const key of await listKeys(this.extras, this.k('dump_requests') + '/')) {
      if (key.includes(this.deviceId)) continue;
      const body = await readAll(this.extras, key);
      if (!body) continue;
      const req = JSON.parse(body.toString('utf8')) as { requesting_device_id: string };
      for (const entry of this.entries.values()) {
        const enc = this.encrypt(entry, req.requesting_device_id);
        await this.extras.put(this.k('inbox', req.requesting_device_id, `${stampKey(new Date(entry.endTime))}_${enc.encrypted_id}.json`), JSON.stringify(enc));
      }
      await this.extras.delete(key);
      answered++;
    }
    return answered;
  }

  /** SubmitEntries for one entry (the seed's hook submits each command as it finishes). */
  async push(entry: ShellEntry): Promise<void> {
    this.entries.set(entry.id, entry);
    const list = await this.devices(this.extras);
    const date = new Date(entry.endTime);
    const master = this.encrypt(entry, this.deviceId);
    await this.core.put(this.k('entries', dayKey(date), `${entry.id}.json`), JSON.stringify(master));
    // The seed writes the copies one after another; sent together here only to keep the
    // simulation short (the same requests, and the simulated clock does not move meanwhile).
    await Promise.all(
      list.devices
        .filter((d) => d.device_id !== this.deviceId)
        .map((d) => this.core.put(this.k('inbox', d.device_id, `${stampKey(date)}_${entry.id}.json`), JSON.stringify({ ...master, device_id: d.device_id, is_from_same_device: false } satisfies EncEntry))),
    );
    // The submit response: pending dump requests (other devices') and this device's deletion requests.
    for (const key of await listKeys(this.extras, this.k('dump_requests') + '/')) if (!key.includes(this.deviceId)) await readAll(this.extras, key);
    await this.deletionRequests();
  }

  /** QueryEntries (list the inbox, read each, delete each) and then ProcessDeletionRequests. */
  async pull(): Promise<ShellEntry[]> {
    const keys = await listKeys(this.core, this.k('inbox', this.deviceId) + '/');
    const fresh: ShellEntry[] = [];
    const read: string[] = [];
    // One GET and then one DELETE per object, as the seed does (in parallel here, see push()).
    const bodies = await Promise.all(keys.map((key) => readAll(this.core, key)));
    keys.forEach((key, i) => {
      const body = bodies[i];
      if (!body) return;
      read.push(key);
      const entry = this.decrypt(JSON.parse(body.toString('utf8')) as EncEntry);
      if (!this.entries.has(entry.id)) {
        this.entries.set(entry.id, entry);
        fresh.push(entry);
      }
    });
    await Promise.all(read.map((key) => this.core.delete(key)));
    await this.deletionRequests();
    return fresh;
  }

  /** GetDeletionRequests: list this device's deletions/ (nothing is deleted in this scenario). */
  private async deletionRequests(): Promise<void> {
    for (const key of await listKeys(this.extras, this.k('deletions', this.deviceId) + '/')) {
      await readAll(this.extras, key);
      await this.extras.delete(key);
    }
  }

  private encrypt(entry: ShellEntry, deviceId: string): EncEntry {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    const data = Buffer.concat([cipher.update(JSON.stringify(entry), 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return {
      encrypted_data: data.toString('base64'),
      nonce: nonce.toString('base64'),
      device_id: deviceId,
      user_id: this.userId,
      date: entry.endTime,
      encrypted_id: entry.id,
      read_count: 0,
      is_from_same_device: deviceId === this.deviceId,
    };
  }

  private decrypt(enc: EncEntry): ShellEntry {
    const data = Buffer.from(enc.encrypted_data, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(enc.nonce, 'base64'));
    decipher.setAuthTag(data.subarray(data.length - 16));
    const plain = Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as ShellEntry;
  }
}
