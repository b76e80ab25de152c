// SFTP backend against a throwaway OpenSSH sshd: the shared conformance suite, host key and
// authentication failures, reconnects, relative paths, and interop with restic 0.14's sftp backend.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SftpLocation, BackendOptions } from '../src/backends/options.js';
import { SftpBackend } from '../src/backends/sftp/sftp.js';
import { backup } from '../src/commands/backup.js';
import { init } from '../src/commands/init.js';
import { restore } from '../src/commands/restore.js';
import { check } from '../src/commands/check.js';
import { Repository } from '../src/repo/repository.js';
import { NotFoundError, PermanentError } from '../src/errors.js';
import { checkHostKey, hostFieldMatches, knownHostsName, parseKnownHosts } from '../src/backends/sftp/known-hosts.js';
import { backendConformance } from './backends/conformance.js';
import { compareTrees, scanTree, summarize } from './helpers/fstree.js';
import { expectOk, restic, run } from './helpers/run.js';
import { startSshd, type Sshd } from './helpers/sshd.js';

let sshd: Sshd;
let repoCounter = 0;

beforeAll(async () => {
  sshd = await startSshd();
});

afterAll(async () => {
  await sshd?.close();
});

function location(path: string): SftpLocation {
  return { kind: 'sftp', user: sshd.user, host: sshd.host, port: sshd.port, path };
}

/** Options that use the test server's key and known_hosts, isolated from the real ~/.ssh. */
function options(extra: Record<string, string> = {}, env: NodeJS.ProcessEnv = {}): BackendOptions {
  return {
    env: { HOME: sshd.dir, ...env },
    extended: { 'sftp.key': sshd.keyFile, 'sftp.known-hosts': sshd.knownHostsFile, ...extra },
  };
}

function newRepoPath(): string {
  return join(sshd.dir, `repo-${++repoCounter}`);
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

backendConformance('sftp', async () => {
  const path = newRepoPath();
  const backend = new SftpBackend(location(path), options());
  await backend.create();
  return { backend, cleanup: () => rm(path, { recursive: true, force: true }) };
});

describe('sftp layout and behaviour', () => {
  it('lays the repository out as restic does, with private modes and no temp files left', async () => {
    const path = newRepoPath();
    const backend = new SftpBackend(location(path), options());
    try {
      await backend.create();
      for (const d of ['data', 'index', 'keys', 'locks', 'snapshots', 'data/00', 'data/7f', 'data/ff']) {
        expect((await stat(join(path, d))).isDirectory(), d).toBe(true);
      }
      expect((await stat(join(path, 'data'))).mode & 0o777).toBe(0o700);
      const data = randomBytes(1000);
      const id = 'ab' + randomBytes(31).toString('hex');
      await backend.save('data', id, data);
      await backend.save('config', 'config', data);
      const file = join(path, 'data', 'ab', id);
      expect((await readFile(file)).equals(data)).toBe(true);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect((await readFile(join(path, 'config'))).equals(data)).toBe(true);
      expect(await readdir(join(path, 'data', 'ab'))).toEqual([id]);
    } finally {
      await backend.close();
      await rm(path, { recursive: true, force: true });
    }
  });

  it('recreates a missing data subdirectory on save, as restic does', async () => {
    const path = newRepoPath();
    const backend = new SftpBackend(location(path), options());
    try {
      await backend.create();
      await rm(join(path, 'data', 'cd'), { recursive: true });
      const id = 'cd' + randomBytes(31).toString('hex');
      await backend.save('data', id, Buffer.from('x'));
      expect((await backend.stat('data', id)).size).toBe(1);
    } finally {
      await backend.close();
      await rm(path, { recursive: true, force: true });
    }
  });

  it('resolves a relative path against the login directory', async () => {
    const backend = new SftpBackend(location('rel/dir/repo'), options());
    try {
      await backend.create();
      await backend.save('keys', 'k'.repeat(64), Buffer.from('key'));
      expect(await readFile(join(sshd.loginDir, 'rel', 'dir', 'repo', 'keys', 'k'.repeat(64)), 'utf8')).toBe('key');
      expect(backend.location).toBe(`sftp://${sshd.user}@127.0.0.1:${sshd.port}/rel/dir/repo`);
    } finally {
      await backend.close();
      await rm(join(sshd.loginDir, 'rel'), { recursive: true, force: true });
    }
  });

  it('reconnects transparently when the connection dropped between operations', async () => {
    const path = newRepoPath();
    const backend = new SftpBackend(location(path), options());
    try {
      await backend.create();
      const data = randomBytes(5000);
      const id = randomBytes(32).toString('hex');
      await backend.save('index', id, data);
      expect(await sshd.dropConnections()).toBeGreaterThan(0);
      // Give the client time to see the connection close before the next operation.
      await new Promise((r) => setTimeout(r, 500));
      expect(Buffer.from(await backend.load('index', id)).equals(data)).toBe(true);
      // Again, without giving the client time to notice the drop before the next request.
      await sshd.dropConnections();
      const more = randomBytes(100);
      await backend.save('index', 'e'.repeat(64), more);
      expect((await backend.stat('index', 'e'.repeat(64))).size).toBe(100);
    } finally {
      await backend.close();
      await rm(path, { recursive: true, force: true });
    }
  });

  it('keeps working with sftp.connections=1 under concurrent load', async () => {
    const path = newRepoPath();
    const backend = new SftpBackend(location(path), options({ 'sftp.connections': '1' }));
    try {
      await backend.create();
      const files = Array.from({ length: 12 }, () => randomBytes(70_000));
      const ids = files.map(() => randomBytes(32).toString('hex'));
      await Promise.all(files.map((f, i) => backend.save('data', ids[i]!, f)));
      const loaded = await Promise.all(ids.map((id) => backend.load('data', id, 1000, 50_000)));
      loaded.forEach((l, i) => expect(Buffer.from(l).equals(files[i]!.subarray(1000, 51_000))).toBe(true));
    } finally {
      await backend.close();
      await rm(path, { recursive: true, force: true });
    }
    expect(() => new SftpBackend(location(path), options({ 'sftp.connections': '0' }))).toThrow(PermanentError);
  });

  it('missing repository: load is NotFoundError, list is empty', async () => {
    const backend = new SftpBackend(location(join(sshd.dir, 'no-such-repo')), options());
    try {
      await expect(backend.load('config', 'config')).rejects.toThrow(NotFoundError);
      const names: string[] = [];
      for await (const f of backend.list('data')) names.push(f.name);
      expect(names).toEqual([]);
      await backend.remove('data', 'a'.repeat(64));
    } finally {
      await backend.close();
    }
  });
});

describe('known_hosts matching', () => {
  const blob = (type: string, body: string) => {
    const t = Buffer.from(type);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(t.length);
    return Buffer.concat([len, t, Buffer.from(body)]);
  };
  const a = blob('ssh-ed25519', 'key-a');
  const b = blob('ssh-ed25519', 'key-b');
  const r = blob('ssh-rsa', 'key-r');
  const line = (hosts: string, key: Buffer, marker = '') => `${marker}${hosts} ${key.subarray(4, 4 + key.readUInt32BE(0)).toString()} ${key.toString('base64')}`;

  it('matches plain, bracketed, wildcard and negated patterns', () => {
    expect(knownHostsName('example.com', 22)).toBe('example.com');
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
    expect(hostFieldMatches('example.com,other', 'EXAMPLE.com')).toBe(true);
    expect(hostFieldMatches('[127.0.0.1]:2222', '127.0.0.1')).toBe(false);
    expect(hostFieldMatches('*.example.com', 'a.example.com')).toBe(true);
    expect(hostFieldMatches('*.example.com,!bad.example.com', 'bad.example.com')).toBe(false);
    expect(hostFieldMatches('host?', 'host1')).toBe(true);
    expect(hostFieldMatches('a.b', 'axb')).toBe(false);
  });

  it('judges keys: known, mismatch, unknown, revoked; skips malformed lines and CA entries', () => {
    const entries = parseKnownHosts(
      [
        '# comment',
        '',
        line('h1', a),
        'h2 ssh-ed25519 !!!notbase64',
        line('h2', r).replace('ssh-rsa', 'ssh-ed25519'), // type field disagrees with the blob
        line('h3', b, '@cert-authority '),
        line('h4', a, '@revoked '),
        line('h4', a),
      ].join('\n'),
    );
    expect(entries.map((e) => e.line)).toEqual([3, 6, 7, 8]);
    expect(checkHostKey(entries, 'h1', a)).toEqual({ status: 'known' });
    expect(checkHostKey(entries, 'h1', b)).toEqual({ status: 'mismatch', line: 3 });
    expect(checkHostKey(entries, 'h2', a)).toEqual({ status: 'unknown' });
    expect(checkHostKey(entries, 'h3', b)).toEqual({ status: 'unknown' });
    expect(checkHostKey(entries, 'h4', a)).toEqual({ status: 'revoked', line: 7 });
  });
});

describe('sftp host keys and authentication', () => {
  it('an unknown host key is a PermanentError that says how to accept it', async () => {
    const known = join(sshd.dir, 'empty_known_hosts');
    await writeFile(known, '# nothing yet\n');
    const backend = new SftpBackend(location(newRepoPath()), options({ 'sftp.known-hosts': known }));
    try {
      const err = await failure(backend.stat('config', 'config'));
      expect(err).toBeInstanceOf(PermanentError);
      expect(err.message).toContain(`ssh-keyscan -p ${sshd.port} 127.0.0.1 >> ${known}`);
      expect(err.message).toMatch(/ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}/);
      expect(err.message).not.toContain('\n');
    } finally {
      await backend.close();
    }
  });

  it('a missing known_hosts file (the default ~/.ssh/known_hosts) means the host is unknown', async () => {
    const backend = new SftpBackend(location(newRepoPath()), { env: { HOME: sshd.dir }, extended: { 'sftp.key': sshd.keyFile } });
    try {
      const err = await failure(backend.stat('config', 'config'));
      expect(err).toBeInstanceOf(PermanentError);
      expect(err.message).toContain(`>> ${join(sshd.dir, '.ssh', 'known_hosts')}`);
    } finally {
      await backend.close();
    }
  });

  it('sftp.insecure-host-key=true skips the check', async () => {
    const backend = new SftpBackend(location(join(sshd.dir, 'nothing')), {
      env: { HOME: sshd.dir },
      extended: { 'sftp.key': sshd.keyFile, 'sftp.insecure-host-key': 'true' },
    });
    try {
      await expect(backend.stat('config', 'config')).rejects.toThrow(NotFoundError);
    } finally {
      await backend.close();
    }
  });

  it('a different key on file for the host is a PermanentError (mismatch)', async () => {
    const other = (await readFile(`${sshd.wrongKeyFile}.pub`, 'utf8')).split(' ');
    const known = join(sshd.dir, 'mismatch_known_hosts');
    await writeFile(known, `[127.0.0.1]:${sshd.port} ${other[0]} ${other[1]}\n`);
    const backend = new SftpBackend(location(newRepoPath()), options({ 'sftp.known-hosts': known }));
    try {
      const err = await failure(backend.stat('config', 'config'));
      expect(err).toBeInstanceOf(PermanentError);
      expect(err.message).toMatch(/does not match .* line 1: possible man-in-the-middle attack/);
    } finally {
      await backend.close();
    }
  });

  it('accepts hashed known_hosts entries (ssh-keygen -H) and finds the key among others', async () => {
    const other = (await readFile(`${sshd.wrongKeyFile}.pub`, 'utf8')).split(' ');
    const known = join(sshd.dir, 'hashed_known_hosts');
    await writeFile(known, `otherhost,[10.0.0.1]:22 ${other[0]} ${other[1]}\n${sshd.knownHostsLine}\n`);
    expectOk('ssh-keygen -H', await run('ssh-keygen', ['-H', '-f', known], { timeoutMs: 30_000 }));
    const text = await readFile(known, 'utf8');
    expect(text).not.toContain('127.0.0.1');
    const backend = new SftpBackend(location(join(sshd.dir, 'nothing')), options({ 'sftp.known-hosts': known }));
    try {
      await expect(backend.stat('config', 'config')).rejects.toThrow(NotFoundError);
    } finally {
      await backend.close();
    }
  });

  it('asks the server for the key type on file: an RSA-only entry works with a server that prefers ed25519', async () => {
    const known = join(sshd.dir, 'rsa_known_hosts');
    await writeFile(known, `${sshd.knownHostsLineRsa}\n`);
    const backend = new SftpBackend(location(join(sshd.dir, 'nothing')), options({ 'sftp.known-hosts': known }));
    try {
      await expect(backend.stat('config', 'config')).rejects.toThrow(NotFoundError);
    } finally {
      await backend.close();
    }
  });

  it('a key the server refuses is a PermanentError naming user@host, without the key', async () => {
    const keyText = await readFile(sshd.wrongKeyFile, 'utf8');
    for (const [extended, env] of [
      [{ 'sftp.key': sshd.wrongKeyFile }, {}],
      [{}, { SSH_KEY: keyText }],
      [{}, { SSH_KEY_FILE: sshd.wrongKeyFile }],
    ] as [Record<string, string>, NodeJS.ProcessEnv][]) {
      const backend = new SftpBackend(location(newRepoPath()), {
        env: { HOME: sshd.dir, ...env },
        extended: { 'sftp.known-hosts': sshd.knownHostsFile, ...extended },
      });
      try {
        const err = await failure(backend.stat('config', 'config'));
        expect(err).toBeInstanceOf(PermanentError);
        expect(err.message).toContain(`${sshd.user}@127.0.0.1:${sshd.port}`);
        expect(err.message).toMatch(/authentication failed/);
        expect(err.message).not.toContain('PRIVATE KEY');
        expect(err.message).not.toContain(keyText.split('\n')[1]!.slice(0, 20));
      } finally {
        await backend.close();
      }
    }
  });

  it('an unparsable key is a PermanentError that names its source, not its content', async () => {
    const backend = new SftpBackend(location(newRepoPath()), {
      env: { HOME: sshd.dir, SSH_KEY: 'not-a-key-s3cret' },
      extended: { 'sftp.known-hosts': sshd.knownHostsFile },
    });
    try {
      const err = await failure(backend.stat('config', 'config'));
      expect(err).toBeInstanceOf(PermanentError);
      expect(err.message).toMatch(/cannot use the key from SSH_KEY/);
      expect(err.message).not.toContain('s3cret');
    } finally {
      await backend.close();
    }
  });

  it('without any key configured or in ~/.ssh, says where a key is looked for', async () => {
    const backend = new SftpBackend(location(newRepoPath()), { env: { HOME: sshd.dir }, extended: { 'sftp.known-hosts': sshd.knownHostsFile } });
    try {
      const err = await failure(backend.stat('config', 'config'));
      expect(err).toBeInstanceOf(PermanentError);
      expect(err.message).toMatch(/no SSH key: set SSH_KEY or SSH_KEY_FILE/);
    } finally {
      await backend.close();
    }
  });

  it('finds ~/.ssh/id_ed25519 by default', async () => {
    const home = await mkdtemp(join(sshd.dir, 'home-'));
    await mkdir(join(home, '.ssh'));
    await writeFile(join(home, '.ssh', 'id_ed25519'), await readFile(sshd.keyFile), { mode: 0o600 });
    await writeFile(join(home, '.ssh', 'known_hosts'), `${sshd.knownHostsLine}\n`);
    const backend = new SftpBackend(location(join(sshd.dir, 'nothing')), { env: { HOME: home } });
    try {
      await expect(backend.stat('config', 'config')).rejects.toThrow(NotFoundError);
    } finally {
      await backend.close();
    }
  });

  it('a refused connection is a retryable (non-permanent) error', async () => {
    const backend = new SftpBackend({ ...location(newRepoPath()), port: 1 }, options());
    try {
      const err = await failure(backend.stat('config', 'config'));
      expect(err).not.toBeInstanceOf(PermanentError);
      expect(err.message).toMatch(/cannot connect/);
    } finally {
      await backend.close();
    }
  });
});

describe('sftp interop with restic 0.14', () => {
  const password = 'sftp interop password';
  let work: string;
  let src: string;
  let passwordFile: string;

  beforeAll(async () => {
    work = await mkdtemp(join(sshd.dir, 'interop-'));
    src = join(work, 'src');
    await mkdir(join(src, 'sub', 'deeper'), { recursive: true });
    await writeFile(join(src, 'big.bin'), randomBytes(3 * 1024 * 1024 + 12345));
    await writeFile(join(src, 'hello.txt'), 'hello sftp\n');
    await writeFile(join(src, 'sub', 'empty'), '');
    await writeFile(join(src, 'sub', 'deeper', 'notes.md'), '# notes\n'.repeat(1000));
    await symlink('hello.txt', join(src, 'link'));
    passwordFile = join(work, 'password');
    await writeFile(passwordFile, `${password}\n`);
  });

  const resticArgs = (repo: string) => ['-o', `sftp.command=${sshd.sshCommand}`, '-r', `sftp:${sshd.user}@127.0.0.1:${repo}`, '--password-file', passwordFile];

  it('restic init + backup over sftp; we restore it byte-equal', async () => {
    const repo = join(work, 'restic-made');
    expectOk('restic init', await restic([...resticArgs(repo), 'init']));
    expectOk('restic backup', await restic([...resticArgs(repo), 'backup', src]));
    const backend = new SftpBackend(location(repo), options());
    try {
      const r = await Repository.open(backend, password);
      const result = await check(r, { readData: true });
      expect(result.errors).toEqual([]);
      const target = join(work, 'restore-ours');
      await restore(r, { snapshot: 'latest', target });
      const diffs = compareTrees(await scanTree(src), await scanTree(join(target, src)), { mtime: 'us', rootMeta: true, hardlinks: false });
      expect(diffs, summarize(diffs)).toEqual([]);
    } finally {
      await backend.close();
    }
  });

  it('we init + back up over sftp; restic check --read-data and restore pass', async () => {
    const repo = join(work, 'ours-made');
    const backend = new SftpBackend(location(repo), options());
    try {
      const r = await init(backend, { password });
      await backup(r, { paths: [src] });
    } finally {
      await backend.close();
    }
    const c = expectOk('restic check --read-data', await restic([...resticArgs(repo), 'check', '--read-data']));
    expect(c.stdout).toContain('no errors were found');
    const target = join(work, 'restore-restic');
    expectOk('restic restore', await restic([...resticArgs(repo), 'restore', 'latest', '--target', target]));
    const diffs = compareTrees(await scanTree(src), await scanTree(join(target, src)), { mtime: 'ns', rootMeta: true, hardlinks: false });
    expect(diffs, summarize(diffs)).toEqual([]);
  });
});
