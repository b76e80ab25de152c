import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decrypt, fromBase64, keyFromScrypt, newMasterKey, scrypt, sha256Hex, toBase64, type MasterKey } from '../src/crypto/index.js';
import { IntegrityError } from '../src/errors.js';
import { createKeyFile, openKeyFile, parseKeyFile } from '../src/repo/keyfile.js';

const utf8 = new TextEncoder();
const text = new TextDecoder();
const FAST = { N: 1024, r: 8, p: 1 };

let dir: string;
let repo: string;
let resticKey: Uint8Array;

function restic(passwordFile: string, ...args: string[]): string {
  return execFileSync('restic', ['-r', repo, '--password-file', passwordFile, '--no-cache', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, RESTIC_PASSWORD: '', RESTIC_REPOSITORY: '' },
  });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'restic-ts-keyfile-'));
  repo = join(dir, 'repo');
  writeFileSync(join(dir, 'pw1'), 'first password\n');
  restic(join(dir, 'pw1'), 'init');
  const [name] = readdirSync(join(repo, 'keys'));
  resticKey = new Uint8Array(readFileSync(join(repo, 'keys', name!)));
  expect(sha256Hex(resticKey)).toBe(name);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Replaces every JSON string and number value with a placeholder, leaving the layout. */
const skeleton = (json: string): string => json.replace(/:"(?:[^"\\]|\\.)*"/g, ':S').replace(/:\d+/g, ':0');

describe('restic-made key file', () => {
  let master: MasterKey | null;

  test('opens with the password and decrypts config', async () => {
    master = await openKeyFile(resticKey, 'first password');
    expect(master).not.toBeNull();
    const config = JSON.parse(text.decode(decrypt(master!, new Uint8Array(readFileSync(join(repo, 'config'))))));
    expect(config.version).toBe(2);
    expect(config.id).toMatch(/^[0-9a-f]{64}$/);
    expect(config.chunker_polynomial).toMatch(/^[0-9a-f]+$/);
  });

  test('parseKeyFile reads its fields', () => {
    const kf = parseKeyFile(resticKey);
    expect(kf.kdf).toBe('scrypt');
    expect(kf.N).toBeGreaterThan(1);
    expect(fromBase64(kf.salt)).toHaveLength(64);
    expect(kf.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
  });

  test('its data is the compact master key JSON in restic field order', async () => {
    const kf = parseKeyFile(resticKey);
    const user = keyFromScrypt(await scrypt(utf8.encode('first password'), fromBase64(kf.salt), kf));
    const inner = text.decode(decrypt(user, fromBase64(kf.data)));
    expect(inner).toMatch(/^\{"mac":\{"k":"[A-Za-z0-9+/=]{24}","r":"[A-Za-z0-9+/=]{24}"\},"encrypt":"[A-Za-z0-9+/=]{44}"\}$/);
  });

  test('wrong password → null', async () => {
    expect(await openKeyFile(resticKey, 'first password\n')).toBeNull();
  });

  test('a flipped byte in data → null', async () => {
    const obj = JSON.parse(text.decode(resticKey));
    const data = fromBase64(obj.data);
    data[20]! ^= 1;
    obj.data = toBase64(data);
    expect(await openKeyFile(utf8.encode(JSON.stringify(obj)), 'first password')).toBeNull();
  });

  test('garbage, unknown KDF, bad params and bad base64 → IntegrityError', async () => {
    const obj = JSON.parse(text.decode(resticKey));
    const variants = [
      utf8.encode('{"created":'),
      utf8.encode('[]'),
      new Uint8Array([0xff, 0xfe]),
      utf8.encode(JSON.stringify({ ...obj, kdf: 'argon2' })),
      utf8.encode(JSON.stringify({ ...obj, N: 1000 })),
      utf8.encode(JSON.stringify({ ...obj, r: '8' })),
      utf8.encode(JSON.stringify({ ...obj, salt: 'a!b' })),
      utf8.encode(JSON.stringify({ ...obj, data: undefined })),
    ];
    for (const v of variants) await expect(openKeyFile(v, 'first password')).rejects.toThrow(IntegrityError);
  });
});

describe('createKeyFile', () => {
  test('has restic’s exact layout (field order, compact, no newline)', async () => {
    const ours = text.decode(await createKeyFile(newMasterKey(), 'x', { username: 'u', hostname: 'h', params: FAST }));
    expect(skeleton(ours)).toBe(skeleton(text.decode(resticKey)));
    expect(skeleton(ours)).toBe('{"created":S,"username":S,"hostname":S,"kdf":S,"N":0,"r":0,"p":0,"salt":S,"data":S}');
    const kf = parseKeyFile(utf8.encode(ours));
    expect(fromBase64(kf.salt)).toHaveLength(64);
    expect([kf.N, kf.r, kf.p]).toEqual([1024, 8, 1]);
  });

  test('restic accepts our key file next to its own (second password)', async () => {
    const master = await openKeyFile(resticKey, 'first password');
    const bytes = await createKeyFile(master!, 'second password', {
      username: 'ts-user',
      hostname: 'ts-host',
      created: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 120)),
    });
    const name = sha256Hex(bytes);
    writeFileSync(join(repo, 'keys', name), bytes);
    writeFileSync(join(dir, 'pw2'), 'second password\n');
    restic(join(dir, 'pw2'), 'snapshots');
    const list = restic(join(dir, 'pw2'), 'key', 'list');
    const ours = list.split('\n').find((l) => l.includes(name.slice(0, 8)));
    expect(ours).toMatch(/^\*.*ts-user\s+ts-host\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
    expect(await openKeyFile(bytes, 'second password')).toEqual(master);
  });

  test('created is Go RFC3339Nano in the local zone', async () => {
    const saved = process.env.TZ;
    const cases: [string, Date, string][] = [
      ['UTC', new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 120)), '2024-01-02T03:04:05.12Z'],
      ['UTC', new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 0)), '2024-01-02T03:04:05Z'],
      ['Asia/Kolkata', new Date(Date.UTC(2024, 0, 2, 23, 59, 59, 1)), '2024-01-03T05:29:59.001+05:30'],
      ['America/St_Johns', new Date(Date.UTC(2024, 6, 1, 1, 0, 0, 500)), '2024-06-30T22:30:00.5-02:30'],
    ];
    try {
      for (const [tz, date, want] of cases) {
        process.env.TZ = tz;
        const kf = parseKeyFile(await createKeyFile(newMasterKey(), 'x', { username: '', hostname: '', params: FAST, created: date }));
        expect(kf.created, tz).toBe(want);
      }
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  test('user and host names are escaped the way Go does', async () => {
    const username = 'a<b>&"\\\b\f\n\u2028\u0001é日本';
    const bytes = await createKeyFile(newMasterKey(), 'x', { username, hostname: '\ud800x\\ud800', params: FAST });
    const json = text.decode(bytes);
    expect(json).toContain(
      '"username":"a\\u003cb\\u003e\\u0026\\"\\\\\\u0008\\u000c\\n\\u2028\\u0001é日本","hostname":"\\ufffdx\\\\ud800"',
    );
    const kf = parseKeyFile(bytes);
    expect(kf.username).toBe(username);
    expect(kf.hostname).toBe('\ufffdx\\ud800');
  });

  test('missing optional fields read as Go zero values', () => {
    const obj = JSON.parse(text.decode(resticKey));
    delete obj.created;
    obj.username = null;
    delete obj.hostname;
    const kf = parseKeyFile(utf8.encode(JSON.stringify(obj)));
    expect([kf.created, kf.username, kf.hostname]).toEqual(['0001-01-01T00:00:00Z', '', '']);
  });
});
