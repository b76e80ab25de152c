import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, posix } from 'node:path';
import SftpClient from 'ssh2-sftp-client';
import type { ConnectConfig, FileEntryWithStats, ServerHostKeyAlgorithm, SFTPWrapper, Stats } from 'ssh2';
import type { Backend, FileInfo, FileType } from '../backend.js';
import { listConfig } from '../backend.js';
import type { BackendOptions, SftpLocation } from '../options.js';
import { NotFoundError, PermanentError, ResticError } from '../../errors.js';
import { mapLimit, Semaphore } from '../../util/concurrency.js';
import { blobKeyType, checkHostKey, entriesFor, fingerprint, knownHostsName, parseKnownHosts, type KnownHostEntry } from './known-hosts.js';

const DIRS: FileType[] = ['data', 'index', 'keys', 'locks', 'snapshots'];

// SFTP status codes (draft-ietf-secsh-filexfer-02), as ssh2 puts them on `err.code`.
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;
const BAD_MESSAGE = 5;
const OP_UNSUPPORTED = 8;

// Transfers are split into requests of this size with several in flight, as OpenSSH's sftp does:
// one request at a time would cost a round trip per chunk.
const CHUNK = 32 * 1024;
const WINDOW = 64;

// restic's sftp backend names its temporary files this way; leftovers are skipped by list().
const TEMP_MARK = '-restic-temp-';

// ssh2's names for the host key algorithms of each known_hosts key type.
const HOST_KEY_ALGORITHMS: Record<string, ServerHostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ssh-dss': ['ssh-dss'],
};

interface PrivateKey {
  key: Buffer | string;
  /** Where the key came from, for messages (never the key itself). */
  source: string;
}

/** One SSH connection with its SFTP channel; `alive` turns false as soon as either closes. */
interface Session {
  client: SftpClient;
  sftp: SFTPWrapper;
  alive: boolean;
}

type Done<T> = (err?: Error | null, value?: T) => void;

function statusCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function errorMessage(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : String(err));
}

/**
 * A repository on an SFTP server, laid out as restic's sftp backend lays it out (`config`,
 * `data/<2 hex>/<id>`, `index/`, `keys/`, `locks/`, `snapshots/`). One SSH connection carries at
 * most `sftp.connections` (default 5) operations at once; it is re-established once, transparently,
 * when it dropped between operations.
 */
export class SftpBackend implements Backend {
  readonly location: string;
  private readonly root: string;
  private readonly host: string;
  private readonly port: number;
  private readonly user: string;
  /** `user@host:port`, naming the server in messages. */
  private readonly server: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly extended: Record<string, string>;
  private readonly sem: Semaphore;
  private conn: Promise<Session> | undefined;

  constructor(loc: SftpLocation, opts: BackendOptions = {}) {
    this.env = opts.env ?? process.env;
    this.extended = opts.extended ?? {};
    this.host = loc.host;
    this.port = loc.port ?? 22;
    this.user = loc.user ?? this.env.USER ?? userInfo().username;
    this.root = loc.path;
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    this.server = `${this.user}@${host}:${this.port}`;
    // restic's own syntax: the short form cannot carry a port, the URL form can.
    this.location =
      loc.port === undefined
        ? `sftp:${loc.user ? `${loc.user}@` : ''}${host}:${loc.path}`
        : `sftp://${loc.user ? `${loc.user}@` : ''}${host}:${loc.port}/${loc.path}`;
    const raw = this.extended['sftp.connections'] ?? '5';
    const connections = Number(raw);
    if (!Number.isInteger(connections) || connections < 1) {
      throw new PermanentError(`sftp.connections must be a positive integer, got ${JSON.stringify(raw)}`);
    }
    this.sem = new Semaphore(connections);
  }

  private filename(type: FileType, name: string): string {
    if (type === 'config') return posix.join(this.root, 'config');
    if (type === 'data') return posix.join(this.root, 'data', name.slice(0, 2), name);
    return posix.join(this.root, type, name);
  }

  async create(): Promise<void> {
    const config = this.filename('config', 'config');
    await this.run('create', this.root, async (s) => {
      const existing = await this.call<Stats>(s, (done) => s.sftp.lstat(config, done)).then(
        () => true,
        (err: unknown) => {
          if (statusCode(err) === NO_SUCH_FILE) return false;
          throw err;
        },
      );
      if (existing) throw new ResticError(`sftp ${this.server}: repository at ${this.root} already exists (config file present)`);
      await this.mkdirAll(s, this.root);
      for (const dir of DIRS) await this.mkdir(s, posix.join(this.root, dir));
      const sub = Array.from({ length: 256 }, (_, i) => posix.join(this.root, 'data', i.toString(16).padStart(2, '0')));
      await mapLimit(sub, WINDOW, (dir) => this.mkdir(s, dir));
    });
  }

  async save(type: FileType, name: string, data: Uint8Array): Promise<void> {
    const final = this.filename(type, name);
    await this.run('save', final, async (s) => {
      const tmp = `${final}${TEMP_MARK}${randomBytes(16).toString('hex')}`;
      const open = () => this.call<Buffer>(s, (done) => s.sftp.open(tmp, 'wx', { mode: 0o600 }, done));
      let handle: Buffer;
      try {
        handle = await open();
      } catch (err) {
        // Repositories made by other tools may lack some data/xx directories.
        if (statusCode(err) !== NO_SUCH_FILE) throw err;
        await this.mkdirAll(s, posix.dirname(final));
        handle = await open();
      }
      try {
        await this.writeAll(s, handle, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
        await this.fsync(s, handle);
      } catch (err) {
        await this.closeHandle(s, handle).catch(() => undefined);
        await this.unlink(s, tmp).catch(() => undefined);
        throw err;
      }
      try {
        await this.closeHandle(s, handle);
        await this.rename(s, tmp, final);
      } catch (err) {
        await this.unlink(s, tmp).catch(() => undefined);
        throw err;
      }
    });
  }

  async load(type: FileType, name: string, offset = 0, length?: number): Promise<Uint8Array> {
    const file = this.filename(type, name);
    return this.run('load', file, async (s) => {
      // Open and stat together: one round trip instead of two.
      const [opened, stat] = await Promise.allSettled([
        this.call<Buffer>(s, (done) => s.sftp.open(file, 'r', done)),
        this.call<Stats>(s, (done) => s.sftp.lstat(file, done)),
      ]);
      if (opened.status === 'rejected') throw opened.reason;
      const handle = opened.value;
      try {
        if (stat.status === 'rejected') throw stat.reason;
        const size = stat.value.size;
        const len = length ?? size - offset;
        if (offset < 0 || len < 0 || offset + len > size) {
          throw new PermanentError(`sftp ${this.server}: load ${file}: range ${offset}+${len} is past the end of the file (size ${size})`);
        }
        const buf = Buffer.allocUnsafe(len);
        await this.readAll(s, handle, buf, offset, file);
        return buf;
      } finally {
        await this.closeHandle(s, handle).catch(() => undefined);
      }
    });
  }

  async stat(type: FileType, name: string): Promise<FileInfo> {
    const file = this.filename(type, name);
    const st = await this.run('stat', file, (s) => this.call<Stats>(s, (done) => s.sftp.lstat(file, done)));
    return { name, size: st.size };
  }

  async *list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo> {
    if (type === 'config') {
      yield* listConfig(this);
      return;
    }
    const top = posix.join(this.root, type);
    let dirs = [top];
    if (type === 'data') {
      dirs = (await this.readdir(top))
        .filter((e) => e.attrs.isDirectory())
        .map((e) => posix.join(top, e.filename))
        .sort();
    }
    // Read a few directories ahead so that listing data/ is not one round trip per subdirectory.
    const ahead: Promise<FileEntryWithStats[]>[] = [];
    let next = 0;
    const fill = () => {
      while (next < dirs.length && ahead.length < 4) {
        const p = this.readdir(dirs[next++]!);
        p.catch(() => undefined); // awaited below; this only keeps an abandoned one from being unhandled
        ahead.push(p);
      }
    };
    fill();
    while (ahead.length > 0) {
      if (signal?.aborted) return;
      const entries = await ahead.shift()!;
      fill();
      entries.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
      for (const e of entries) {
        if (signal?.aborted) return;
        if (!e.attrs.isFile() || e.filename.includes(TEMP_MARK)) continue;
        yield { name: e.filename, size: e.attrs.size };
      }
    }
  }

  async remove(type: FileType, name: string): Promise<void> {
    const file = this.filename(type, name);
    await this.run('remove', file, (s) =>
      this.unlink(s, file).catch((err: unknown) => {
        if (statusCode(err) !== NO_SUCH_FILE) throw err;
      }),
    );
  }

  async close(): Promise<void> {
    const pending = this.conn;
    this.conn = undefined;
    const s = await pending?.catch(() => undefined);
    if (!s) return;
    s.alive = false;
    await s.client.end().catch(() => undefined);
  }

  /** A directory's entries; a missing directory has none (restic ignores it too). */
  private readdir(dir: string): Promise<FileEntryWithStats[]> {
    return this.run('list', dir, (s) =>
      this.call<FileEntryWithStats[]>(s, (done) => s.sftp.readdir(dir, done)).catch((err: unknown) => {
        if (statusCode(err) === NO_SUCH_FILE) return [];
        throw err;
      }),
    );
  }

  /**
   * Runs one operation under the concurrency limit. When the connection turns out to have dropped,
   * the operation runs once more on a new connection; every operation is safe to repeat.
   */
  private run<T>(what: string, file: string, op: (s: Session) => Promise<T>): Promise<T> {
    return this.sem.run(async () => {
      let s = await this.session();
      try {
        return await op(s);
      } catch (err) {
        if (s.alive) throw this.wrap(err, what, file);
      }
      s = await this.session();
      try {
        return await op(s);
      } catch (err) {
        throw this.wrap(err, what, file);
      }
    });
  }

  /** The live session, connecting when there is none; concurrent callers share one attempt. */
  private async session(): Promise<Session> {
    for (let attempt = 0; ; attempt++) {
      let pending = this.conn;
      if (!pending) {
        const p = this.connect();
        this.conn = pending = p;
        p.catch(() => {
          if (this.conn === p) this.conn = undefined;
        });
      }
      const s = await pending;
      if (s.alive) return s;
      if (this.conn === pending) this.conn = undefined;
      if (attempt > 0) throw new ResticError(`sftp ${this.server}: connection lost right after connecting`);
    }
  }

  private async connect(): Promise<Session> {
    const key = await this.privateKey();
    const knownHosts = await this.knownHosts();
    let hostKeyProblem: PermanentError | undefined;
    let firstError: (Error & { level?: string }) | undefined;
    const holder: { session?: Session; lost: boolean } = { lost: false };
    const lost = () => {
      holder.lost = true;
      if (holder.session) holder.session.alive = false;
    };
    // Our own callbacks also keep ssh2-sftp-client from logging connection events to the console.
    const client = new SftpClient('restic-ts', { error: lost, end: lost, close: lost });
    // ssh2-sftp-client rewraps errors and drops ssh2's `level`, so look at the originals too.
    client.on('error', (err: Error & { level?: string }) => {
      firstError ??= err;
    });
    const name = knownHostsName(this.host, this.port);
    const config: ConnectConfig = {
      host: this.host,
      port: this.port,
      username: this.user,
      privateKey: key.key,
      readyTimeout: 20_000,
      // Notices a silently vanished server within about a minute instead of waiting forever.
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      hostVerifier: (blob: Buffer): boolean => {
        hostKeyProblem = knownHosts ? this.hostKeyProblem(knownHosts, name, blob) : undefined;
        return hostKeyProblem === undefined;
      },
    };
    const algorithms = knownHosts && this.preferredHostKeyAlgorithms(knownHosts.entries, name);
    if (algorithms) config.algorithms = { serverHostKey: { remove: algorithms, prepend: algorithms, append: [] } };
    let sftp: SFTPWrapper;
    try {
      sftp = await client.connect(config);
    } catch (err) {
      if (hostKeyProblem) throw hostKeyProblem;
      const cause = firstError ?? (err as Error & { level?: string });
      const msg = errorMessage(cause);
      if (cause.level === 'client-authentication') {
        throw new PermanentError(`sftp ${this.server}: authentication failed with the key from ${key.source}`);
      }
      if (/privateKey|private key|passphrase/i.test(msg)) {
        throw new PermanentError(`sftp ${this.server}: cannot use the key from ${key.source}: ${msg}`);
      }
      throw new ResticError(`sftp ${this.server}: cannot connect: ${msg}`);
    }
    const session: Session = { client, sftp, alive: !holder.lost };
    holder.session = session;
    sftp.on('close', lost);
    sftp.on('end', lost);
    sftp.on('error', lost);
    return session;
  }

  /** Explicit `-o sftp.key` first, then SSH_KEY (key text), SSH_KEY_FILE, ~/.ssh/id_ed25519, ~/.ssh/id_rsa. */
  private async privateKey(): Promise<PrivateKey> {
    const fromFile = async (path: string): Promise<PrivateKey> => {
      try {
        return { key: await fs.readFile(path), source: path };
      } catch (err) {
        throw new PermanentError(`sftp ${this.server}: cannot read the SSH key file ${path}: ${errorMessage(err)}`);
      }
    };
    const option = this.extended['sftp.key'];
    if (option) return fromFile(option);
    if (this.env.SSH_KEY) return { key: this.env.SSH_KEY, source: 'SSH_KEY' };
    if (this.env.SSH_KEY_FILE) return fromFile(this.env.SSH_KEY_FILE);
    const ssh = join(this.env.HOME ?? homedir(), '.ssh');
    for (const file of ['id_ed25519', 'id_rsa']) {
      const path = join(ssh, file);
      try {
        return { key: await fs.readFile(path), source: path };
      } catch (err) {
        if (statusCode(err) !== 'ENOENT') throw new PermanentError(`sftp ${this.server}: cannot read ${path}: ${errorMessage(err)}`);
      }
    }
    throw new PermanentError(
      `sftp ${this.server}: no SSH key: set SSH_KEY or SSH_KEY_FILE, pass -o sftp.key=FILE, or create ${join(ssh, 'id_ed25519')}`,
    );
  }

  /** The known_hosts entries to check against, or undefined when host key checking is off. */
  private async knownHosts(): Promise<{ file: string; entries: KnownHostEntry[] } | undefined> {
    if (this.extended['sftp.insecure-host-key'] === 'true') return undefined;
    const file =
      this.extended['sftp.known-hosts'] ?? this.env.SSH_KNOWN_HOSTS ?? join(this.env.HOME ?? homedir(), '.ssh', 'known_hosts');
    try {
      return { file, entries: parseKnownHosts(await fs.readFile(file, 'utf8')) };
    } catch (err) {
      // No file means no host is known yet: the unknown-host error says how to add one.
      if (statusCode(err) === 'ENOENT') return { file, entries: [] };
      throw new PermanentError(`sftp ${this.server}: cannot read known hosts file ${file}: ${errorMessage(err)}`);
    }
  }

  private hostKeyProblem(known: { file: string; entries: KnownHostEntry[] }, name: string, blob: Buffer): PermanentError | undefined {
    const verdict = checkHostKey(known.entries, name, blob);
    const shown = `${blobKeyType(blob)} ${fingerprint(blob)}`;
    const scan = `ssh-keyscan${this.port === 22 ? '' : ` -p ${this.port}`} ${this.host} >> ${known.file}`;
    switch (verdict.status) {
      case 'known':
        return undefined;
      case 'unknown':
        return new PermanentError(
          `sftp ${this.server}: host key ${shown} is not in ${known.file}; after checking the fingerprint, accept it with \`${scan}\` (or -o sftp.insecure-host-key=true to skip the check)`,
        );
      case 'revoked':
        return new PermanentError(`sftp ${this.server}: host key ${shown} is marked @revoked in ${known.file} line ${verdict.line}`);
      case 'mismatch':
        return new PermanentError(
          `sftp ${this.server}: host key ${shown} does not match ${known.file} line ${verdict.line}: possible man-in-the-middle attack; if the key changed on purpose, run \`ssh-keygen -R '${name}' -f ${known.file}\` and accept the new one`,
        );
    }
  }

  /** Host key algorithms of the keys known for the host, so the server is asked for one of those first. */
  private preferredHostKeyAlgorithms(entries: readonly KnownHostEntry[], name: string): ServerHostKeyAlgorithm[] | undefined {
    const algs = new Set<ServerHostKeyAlgorithm>();
    for (const e of entriesFor(entries, name)) {
      if (e.marker === undefined) for (const a of HOST_KEY_ALGORITHMS[e.keyType] ?? []) algs.add(a);
    }
    return algs.size > 0 ? [...algs] : undefined;
  }

  /** Sends one SFTP request; never on a dead channel, where ssh2 would drop it and never answer. */
  private call<T>(s: Session, send: (done: Done<T>) => void): Promise<T> {
    if (!s.alive) return Promise.reject(new ResticError(`sftp ${this.server}: connection lost`));
    return new Promise<T>((resolve, reject) => {
      send((err, value) => (err ? reject(err) : resolve(value as T)));
    });
  }

  private async writeAll(s: Session, handle: Buffer, data: Buffer): Promise<void> {
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (next < data.length && !failed) {
        const start = next;
        const n = Math.min(CHUNK, data.length - start);
        next += n;
        try {
          await this.call<void>(s, (done) => s.sftp.write(handle, data, start, n, start, done));
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(WINDOW, Math.ceil(data.length / CHUNK)) }, worker));
  }

  private async readAll(s: Session, handle: Buffer, buf: Buffer, position: number, file: string): Promise<void> {
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (next < buf.length && !failed) {
        const end = Math.min(next + CHUNK, buf.length);
        let at = next;
        next = end;
        try {
          // A server may answer with fewer bytes than asked; ask again for the rest.
          while (at < end) {
            const n = await this.call<number>(s, (done) => s.sftp.read(handle, buf, at, end - at, position + at, done));
            if (n === 0) throw new ResticError(`sftp ${this.server}: load ${file}: file shrank while reading`);
            at += n;
          }
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(WINDOW, Math.ceil(buf.length / CHUNK)) }, worker));
  }

  /** fsync@openssh.com where the server offers it, so the rename never exposes unwritten data. */
  private fsync(s: Session, handle: Buffer): Promise<void> {
    return this.call<void>(s, (done) => {
      try {
        s.sftp.ext_openssh_fsync(handle, (err) => done(err));
      } catch {
        done(); // ssh2 throws synchronously when the server lacks the extension
      }
    });
  }

  /** posix-rename@openssh.com (atomic, replaces the target) where available, else plain SFTP rename. */
  private rename(s: Session, from: string, to: string): Promise<void> {
    return this.call<void>(s, (done) => {
      try {
        s.sftp.ext_openssh_rename(from, to, done);
      } catch {
        s.sftp.rename(from, to, done);
      }
    });
  }

  private closeHandle(s: Session, handle: Buffer): Promise<void> {
    return this.call<void>(s, (done) => s.sftp.close(handle, done));
  }

  private unlink(s: Session, path: string): Promise<void> {
    return this.call<void>(s, (done) => s.sftp.unlink(path, done));
  }

  /** Creates one directory; an existing directory is fine (OpenSSH reports it as a generic failure). */
  private async mkdir(s: Session, dir: string): Promise<void> {
    try {
      await this.call<void>(s, (done) => s.sftp.mkdir(dir, { mode: 0o700 }, done));
    } catch (err) {
      if (statusCode(err) === NO_SUCH_FILE) throw err;
      const st = await this.call<Stats>(s, (done) => s.sftp.lstat(dir, done)).catch(() => undefined);
      if (!st?.isDirectory()) throw err;
    }
  }

  private async mkdirAll(s: Session, dir: string): Promise<void> {
    if (dir === '' || dir === '.' || dir === '/') return;
    try {
      await this.mkdir(s, dir);
    } catch (err) {
      const parent = posix.dirname(dir);
      if (statusCode(err) !== NO_SUCH_FILE || parent === dir) throw err;
      await this.mkdirAll(s, parent);
      await this.mkdir(s, dir);
    }
  }

  /** Our typed error for a failed operation on `file`, one line, naming the server. */
  private wrap(err: unknown, what: string, file: string): ResticError {
    if (err instanceof ResticError) return err;
    const where = `sftp ${this.server}: ${what} ${file}`;
    switch (statusCode(err)) {
      case NO_SUCH_FILE:
        return new NotFoundError(`${where}: no such file or directory`);
      case PERMISSION_DENIED:
        return new PermanentError(`${where}: permission denied`);
      case BAD_MESSAGE:
      case OP_UNSUPPORTED:
        return new PermanentError(`${where}: ${errorMessage(err)}`);
      default:
        return new ResticError(`${where}: ${errorMessage(err)}`);
    }
  }
}
