#!/usr/bin/env node
// Makes sure the external programs the tests run are installed; `npm test` calls this before vitest.
// As root on a Debian-like system it installs what is missing with apt-get; otherwise it says what to do.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import * as path from 'node:path';

/** Command the tests run -> Debian package that provides it; optional ones only make some tests skip. */
const NEEDED = [
  { command: 'restic', pkg: 'restic', optional: false, why: 'interop tests run the real restic' },
  { command: '/usr/sbin/sshd', pkg: 'openssh-server', optional: false, why: 'sftp backend tests start a private sshd' },
  { command: 'ssh-keygen', pkg: 'openssh-client', optional: false, why: 'sftp tests make keys with ssh-keygen' },
  { command: 'rclone', pkg: 'rclone', optional: false, why: 'REST tests talk to `rclone serve restic`' },
  { command: 'openssl', pkg: 'openssl', optional: false, why: 'TLS tests make a self-signed certificate' },
  { command: 'kubectl', pkg: 'kubernetes-client', optional: false, why: 'the in-process Kubernetes API server is proven with the real kubectl' },
  { command: '/usr/lib/postgresql/15/bin/initdb', pkg: 'postgresql', optional: false, why: 'Che tests and the demo run a real PostgreSQL' },
  { command: 'go', pkg: 'golang-go', optional: true, why: 'the chunker test generates restic/chunker vectors with Go (skipped without it)' },
];

function onPath(command) {
  if (path.isAbsolute(command)) return isExecutable(command);
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && isExecutable(path.join(dir, command)));
}

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function sh(cmd, args) {
  process.stdout.write(`ensure-test-deps: ${cmd} ${args.join(' ')}\n`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

const missing = NEEDED.filter((n) => !onPath(n.command));
if (missing.length === 0) process.exit(0);

const list = missing.map((n) => `  ${n.command} (package ${n.pkg}): ${n.why}`).join('\n');
const pkgs = missing.map((n) => n.pkg);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot || !onPath('apt-get')) {
  process.stderr.write(`ensure-test-deps: missing programs the tests need:\n${list}\n`
    + `Install them, e.g. as root: apt-get update && apt-get install -y ${pkgs.join(' ')}\n`
    + `(not installing: ${isRoot ? 'apt-get not found' : 'not running as root'})\n`);
  process.exit(missing.every((n) => n.optional) ? 0 : 1);
}

process.stdout.write(`ensure-test-deps: installing ${pkgs.join(', ')}:\n${list}\n`);
try {
  sh('apt-get', ['update']);
  sh('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs]);
} catch (e) {
  process.stderr.write(`ensure-test-deps: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
const still = missing.filter((n) => !onPath(n.command));
if (still.length > 0) {
  process.stderr.write(`ensure-test-deps: still missing after apt-get: ${still.map((n) => n.command).join(', ')}\n`);
  process.exit(1);
}
