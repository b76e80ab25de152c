import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Chunker,
  MAX_SIZE,
  MIN_SIZE,
  Splitter,
  cutPoints,
  formatPolynomial,
  isIrreducible,
  parsePolynomial,
  randomPolynomial,
  type Polynomial,
} from '../src/chunker/index.js';
import { IntegrityError, UsageError } from '../src/errors.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function* blocks(data: Uint8Array, sizes: () => number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < data.length; ) {
    const n = Math.min(sizes(), data.length - off);
    yield data.subarray(off, off + n);
    off += n;
  }
}

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of gen) out.push(c);
  return out;
}

/** A small deterministic PRNG so failures with random block sizes can be replayed. */
function lcg(seed: number, max: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 1 + (s % max);
  };
}

// restic/chunker's published vectors (chunker_test.go, chunks1 and chunks2): 32 MiB of Go's
// math/rand Uint32() seeded with 23, little endian, chunked with polynomial 0x3DA3358B4DC173.
const TEST_POL = 0x3da3358b4dc173n;
const CHUNKS1: Array<[number, bigint, string]> = [
  [2163460, 0x000b98d4cdf00000n, '4b94cb2cf293855ea43bf766731c74969b91aa6bf3c078719aabdd19860d590d'],
  [643703, 0x000d4e8364d00000n, '5727a63c0964f365ab8ed2ccf604912f2ea7be29759a2b53ede4d6841e397407'],
  [1528956, 0x0015a25c2ef00000n, 'a73759636a1e7a2758767791c69e81b69fb49236c6929e5d1b654e06e37674ba'],
  [1955808, 0x00102a8242e00000n, 'c955fb059409b25f07e5ae09defbbc2aadf117c97a3724e06ad4abd2787e6824'],
  [2222372, 0x00045da878000000n, '6ba5e9f7e1b310722be3627716cf469be941f7f3e39a4c3bcefea492ec31ee56'],
  [2538687, 0x00198a8179900000n, '8687937412f654b5cfe4a82b08f28393a0c040f77c6f95e26742c2fc4254bfde'],
  [609606, 0x001d4e8d17100000n, '5da820742ff5feb3369112938d3095785487456f65a8efc4b96dac4be7ebb259'],
  [1205738, 0x000a7204dd600000n, 'cc70d8fad5472beb031b1aca356bcab86c7368f40faa24fe5f8922c6c268c299'],
  [959742, 0x00183e71e1400000n, '4065bdd778f95676c92b38ac265d361f81bff17d76e5d9452cf985a2ea5a4e39'],
  [4036109, 0x001fec043c700000n, 'b9cf166e75200eb4993fc9b6e22300a6790c75e6b0fc8f3f29b68a752d42f275'],
  [1525894, 0x000b1574b1500000n, '2f238180e4ca1f7520a05f3d6059233926341090f9236ce677690c1823eccab3'],
  [1352720, 0x00018965f2e00000n, 'afd12f13286a3901430de816e62b85cc62468c059295ce5888b76b3af9028d84'],
  [811884, 0x00155628aa100000n, '42d0cdb1ee7c48e552705d18e061abb70ae7957027db8ae8db37ec756472a70a'],
  [1282314, 0x001909a0a1400000n, '819721c2457426eb4f4c7565050c44c32076a56fa9b4515a1c7796441730eb58'],
  [1318021, 0x001cceb980000000n, '842eb53543db55bacac5e25cb91e43cc2e310fe5f9acc1aee86bdf5e91389374'],
  [948640, 0x0011f7a470a00000n, 'b8e36bf7019bb96ac3fb7867659d2167d9d3b3148c09fe0de45850b8fe577185'],
  [645464, 0x00030ce2d9400000n, '5584bd27982191c3329f01ed846bfd266e96548dfa87018f745c33cfc240211d'],
  [533758, 0x0004435c53c00000n, '4da778a25b72a9a0d53529eccfe2e5865a789116cb1800f470d8df685a8ab05d'],
  [1128303, 0x0000c48517800000n, '08c6b0b38095b348d80300f0be4c5184d2744a17147c2cba5cc4315abf4c048f'],
  [800374, 0x000968473f900000n, '820284d2c8fd243429674c996d8eb8d3450cbc32421f43113e980f516282c7bf'],
  [2453512, 0x001e197c92600000n, '5fa870ed107c67704258e5e50abe67509fb73562caf77caa843b5f243425d853'],
  [2651975, 0x000ae6c868000000n, '181347d2bbec32bef77ad5e9001e6af80f6abcf3576549384d334ee00c1988d8'],
  // Not a cut: the input ends; the digest is still the fresh state because the chunk is < MIN_SIZE.
  [237392, 0x0000000000000001n, 'fcd567f5d866357a8e299fd5b2359bb2c8157c30395229c4e9b0a353944a7978'],
];
const ZERO_CHUNK_SHA = '07854d2fef297a06ba81685e660c332de36d5d18d546927d30daad6d7fda1541';

const goBin = spawnSync('go', ['version'], { encoding: 'utf8' }).status === 0 ? 'go' : undefined;
const mathrandSrc = fileURLToPath(new URL('../test-fixtures/chunker/mathrand.go', import.meta.url));

describe.skipIf(!goBin)('restic/chunker test vectors (needs golang-go for the input stream)', () => {
  let data: Buffer;
  let goTmp: string | undefined;
  beforeAll(async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    // `go run` needs a build cache; without HOME (some CI environments) give it a temporary one.
    if (!env.GOCACHE && !env.XDG_CACHE_HOME && !env.HOME) {
      goTmp = await mkdtemp(join(tmpdir(), 'restic-ts-gocache-'));
      env.GOCACHE = goTmp;
    }
    data = execFileSync('go', ['run', mathrandSrc, '23', String(32 * 1024 * 1024)], {
      env,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120_000,
    });
    expect(data.length).toBe(32 * 1024 * 1024);
  });
  afterAll(async () => {
    if (goTmp) await rm(goTmp, { recursive: true, force: true });
  });

  it('cuts chunks1 with the same lengths, cut fingerprints and digests', () => {
    const splitter = new Splitter(TEST_POL);
    let start = 0;
    for (const [i, [length, fp, digest]] of CHUNKS1.entries()) {
      const len = splitter.next(data, start, data.length);
      const got = len < 0 ? data.length - start : len;
      expect({ i, length: got, fp: splitter.fingerprint.toString(16) }).toEqual({ i, length, fp: fp.toString(16) });
      expect(sha256(data.subarray(start, start + got))).toBe(digest);
      start += got;
    }
    expect(start).toBe(data.length);
  });

  it('cutPoints agrees', () => {
    let end = 0;
    expect(cutPoints(TEST_POL, data)).toEqual(CHUNKS1.map(([len]) => (end += len)));
  });

  it('streams the same chunks whatever the input block sizes', async () => {
    const want = CHUNKS1.map(([, , d]) => d);
    const chunker = new Chunker(TEST_POL);
    const cases: Array<[string, () => number]> = [
      ['one block', () => data.length],
      ['1..4096 byte blocks', lcg(1, 4096)],
      ['1..3 MiB blocks', lcg(2, 3 * 1024 * 1024)],
      ['exactly MAX_SIZE blocks', () => MAX_SIZE],
      ['MIN_SIZE - 64 blocks', () => MIN_SIZE - 64],
    ];
    for (const [name, sizes] of cases) {
      const chunks = await collect(chunker.chunks(blocks(data, sizes)));
      expect(chunks.map(sha256), name).toEqual(want);
      // Owned memory: each chunk has an ArrayBuffer of its own.
      for (const c of chunks) expect(c.buffer.byteLength).toBe(c.length);
    }
  });

  it('chunks several streams concurrently with one Chunker, also after an abandoned stream', async () => {
    const want = CHUNKS1.map(([, , d]) => d);
    const chunker = new Chunker(TEST_POL);
    for await (const c of chunker.chunks(blocks(data, () => 1 << 20))) {
      expect(sha256(c)).toBe(want[0]);
      break;
    }
    const runs = await Promise.all(
      [5, 6, 7].map(async (seed) => (await collect(chunker.chunks(blocks(data, lcg(seed, 1 << 20))))).map(sha256)),
    );
    for (const ids of runs) expect(ids).toEqual(want);
  });
});

describe('chunker on special inputs', () => {
  it('cuts zeros at every MIN_SIZE with fingerprint 0 (chunks2)', async () => {
    const zeros = new Uint8Array(4 * MIN_SIZE);
    const splitter = new Splitter(TEST_POL);
    for (let start = 0; start < zeros.length; start += MIN_SIZE) {
      expect(splitter.next(zeros, start, zeros.length)).toBe(MIN_SIZE);
      expect(splitter.fingerprint).toBe(0n);
    }
    const chunks = await collect(new Chunker(TEST_POL).chunks(blocks(zeros, lcg(3, 100_000))));
    expect(chunks.map(sha256)).toEqual(Array(4).fill(ZERO_CHUNK_SHA));
  });

  it('forces a cut at MAX_SIZE when the digest never matches', () => {
    // With a period of 64 bytes the window, hence the digest, is constant once full.
    const pattern = randomBytes(64);
    const data = new Uint8Array(2 * MAX_SIZE + 5);
    for (let i = 0; i < data.length; i += 64) data.set(pattern.subarray(0, Math.min(64, data.length - i)), i);
    const ends = cutPoints(TEST_POL, data);
    // A 2^-20 chance that the pattern's constant digest matches the split mask: then cuts are at MIN_SIZE.
    const period = ends[0] === MIN_SIZE ? MIN_SIZE : MAX_SIZE;
    expect(ends.slice(0, 2)).toEqual([period, 2 * period]);
    expect(ends.at(-1)).toBe(data.length);
  });

  it('yields nothing for empty input and one chunk for short input', async () => {
    const chunker = new Chunker(TEST_POL);
    expect(await collect(chunker.chunks(blocks(new Uint8Array(0), () => 1)))).toEqual([]);
    expect(cutPoints(TEST_POL, new Uint8Array(0))).toEqual([]);
    const small = randomBytes(1000);
    const chunks = await collect(chunker.chunks(blocks(small, lcg(4, 50))));
    expect(chunks).toEqual([small]);
  });

  it('rejects a polynomial of the wrong degree', () => {
    expect(() => new Chunker(0x3da3358b4dc17n)).toThrow(UsageError);
  });
});

describe('polynomials', () => {
  // Irreducibility facts from restic/chunker's polynomials_test.go.
  const known: Array<[bigint, boolean]> = [
    [0x38f1e565e288dfn, false], [0x3da3358b4dc173n, true], [0x30a8295b9d5c91n, false],
    [0x255f4350b962cbn, false], [0x267f776110a235n, false], [0x2f4dae10d41227n, false],
    [0x2482734cacca49n, true], [0x312daf4b284899n, false], [0x29dfb6553d01d1n, false],
    [0x3548245eb26257n, false], [0x3199e7ef4211b3n, false], [0x362f39017dae8bn, false],
    [0x200d57aa6fdacbn, false], [0x35e0a4efa1d275n, false], [0x2ced55b026577fn, false],
    [0x260b012010893dn, false], [0x2df29cbcd59e9dn, false], [0x3f2ac7488bd429n, false],
    [0x3e5cb1711669fbn, false], [0x226d8de57a9959n, false], [0x3c8de80aaf5835n, false],
    [0x2026a59efb219bn, false], [0x39dfa4d13fb231n, false], [0x3143d0464b3299n, false],
  ];

  it('isIrreducible agrees with known values', () => {
    for (const [p, irred] of known) expect([p.toString(16), isIrreducible(p)]).toEqual([p.toString(16), irred]);
  });

  it('isIrreducible agrees with trial division for every polynomial up to degree 12', () => {
    const deg = (p: number): number => 31 - Math.clz32(p);
    const mod = (x: number, d: number): number => {
      for (let dx = deg(x); x !== 0 && dx >= deg(d); dx = deg(x)) x ^= d << (dx - deg(d));
      return x;
    };
    for (let p = 2; p < 1 << 13; p++) {
      let irred = true;
      for (let d = 2; deg(d) <= deg(p) >> 1 && irred; d++) if (mod(p, d) === 0) irred = false;
      if (isIrreducible(BigInt(p)) !== irred) throw new Error(`disagree on ${p.toString(2)}`);
    }
    expect(isIrreducible(0n)).toBe(false);
    expect(isIrreducible(1n)).toBe(false);
  });

  it('randomPolynomial picks irreducible degree-53 polynomials like restic', () => {
    const seen = new Set<Polynomial>();
    for (let i = 0; i < 8; i++) {
      const p = randomPolynomial();
      expect(p >> 53n).toBe(1n);
      expect(p & 1n).toBe(1n);
      expect(isIrreducible(p)).toBe(true);
      expect(parsePolynomial(formatPolynomial(p))).toBe(p);
      seen.add(p);
    }
    expect(seen.size).toBe(8);
  });

  it('parses and formats config values', () => {
    expect(parsePolynomial('3da3358b4dc173')).toBe(TEST_POL);
    expect(parsePolynomial('3DA3358B4DC173')).toBe(TEST_POL);
    expect(formatPolynomial(TEST_POL)).toBe('3da3358b4dc173');
    for (const bad of ['', '0x3da3358b4dc173', 'xyz', '3da3358b4dc17', '13da3358b4dc173', '38f1e565e288df', '1'.repeat(17)]) {
      expect(() => parsePolynomial(bad), bad).toThrow(IntegrityError);
    }
  });
});

const hasRestic = spawnSync('restic', ['version']).status === 0;

interface TreeNode {
  name: string;
  type: string;
  content?: string[] | null;
  subtree?: string;
}

describe.skipIf(!hasRestic)('same chunks as restic 0.14', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'restic-ts-chunker-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('backs up files with restic and finds the same blobs in the same order', async () => {
    const repo = join(dir, 'repo');
    const files = join(dir, 'files');
    await writeFile(join(dir, 'pw'), 'chunker-test\n');
    const env: NodeJS.ProcessEnv = { ...process.env, RESTIC_PASSWORD_FILE: join(dir, 'pw'), RESTIC_REPOSITORY: repo };
    delete env.RESTIC_PASSWORD;
    const restic = (...args: string[]): string =>
      execFileSync('restic', ['--no-cache', '--quiet', ...args], {
        env,
        cwd: files,
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        timeout: 120_000,
      });

    const pattern = randomBytes(64);
    const periodic = Buffer.alloc(20 * 1024 * 1024 + 5);
    for (let i = 0; i < periodic.length; i += 64) pattern.copy(periodic, i);
    const inputs: Record<string, Buffer> = {
      'random-20m': randomBytes(20 * 1024 * 1024),
      'exact-512k': randomBytes(MIN_SIZE),
      'exact-8m': randomBytes(MAX_SIZE),
      '8m-plus-1': randomBytes(MAX_SIZE + 1),
      'zeros-20m': Buffer.alloc(20 * 1024 * 1024),
      'periodic-20m': periodic,
      mixed: Buffer.concat([randomBytes(1_500_000), Buffer.alloc(3_000_000), randomBytes(2_000_000)]),
      small: randomBytes(100),
      empty: Buffer.alloc(0),
    };
    await mkdir(files);
    for (const [name, data] of Object.entries(inputs)) await writeFile(join(files, name), data);

    restic('init');
    const config = JSON.parse(restic('cat', 'config')) as { chunker_polynomial: string };
    const pol = parsePolynomial(config.chunker_polynomial);
    restic('backup', '.');

    const [snap] = JSON.parse(restic('snapshots', '--json')) as Array<{ tree: string }>;
    const root = JSON.parse(restic('cat', 'blob', snap!.tree)) as { nodes: TreeNode[] };
    const contentOf = new Map(root.nodes.map((n) => [n.name, n.content ?? []]));

    const blobSize = new Map<string, number>();
    for (const id of restic('list', 'index').split('\n').filter(Boolean)) {
      const index = JSON.parse(restic('cat', 'index', id)) as {
        packs: Array<{ blobs: Array<{ id: string; type: string; length: number; uncompressed_length?: number }> }>;
      };
      // Stored length of an uncompressed blob = plaintext + IV (16) + MAC (16).
      for (const p of index.packs) {
        for (const b of p.blobs) if (b.type === 'data') blobSize.set(b.id, b.uncompressed_length ?? b.length - 32);
      }
    }
    const dataBlobs = restic('list', 'blobs')
      .split('\n')
      .filter((l) => l.startsWith('data '))
      .map((l) => l.slice(5));

    const chunker = new Chunker(pol);
    const ours = new Map<string, number>();
    for (const name of Object.keys(inputs)) {
      const chunks = await collect(chunker.chunks(createReadStream(join(files, name))));
      const ids = chunks.map(sha256);
      chunks.forEach((c, i) => ours.set(ids[i]!, c.length));
      expect(ids, `${name} with polynomial ${config.chunker_polynomial}`).toEqual(contentOf.get(name));
      // Same cuts from the in-memory path.
      expect(cutPoints(pol, inputs[name]!).length, name).toBe(chunks.length);
    }
    expect(new Set(dataBlobs)).toEqual(new Set(ours.keys()));
    expect(blobSize).toEqual(ours);
  });
});
