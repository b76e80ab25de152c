// A throwaway OpenSSH sshd on 127.0.0.1 for SFTP tests: own host key, own client key, own config,
// run in the foreground as a child of the test process (not as a system service).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { expectOk, run } from './run.js';

export const SSHD = '/usr/sbin/sshd';

export interface Sshd {
  host: string;
  port: number;
  user: string;
  /** Private key file the server accepts. */
  keyFile: string;
  /** A second private key the server does not accept. */
  wrongKeyFile: string;
  /** known_hosts with the server's host key under `[127.0.0.1]:port`. */
  knownHostsFile: string;
  /** The server's ed25519 host key as a known_hosts line (`[127.0.0.1]:port type base64`). */
  knownHostsLine: string;
  /** The server's second host key (RSA) as a known_hosts line. */
  knownHostsLineRsa: string;
  /** Directory SFTP sessions start in, so relative paths resolve inside it. */
  loginDir: string;
  /** Temp directory holding everything above; removed by close(). */
  dir: string;
  /** The `ssh` command line restic's `-o sftp.command=` needs to reach this server. */
  sshCommand: string;
  /** Ends every open SSH connection (kills the per-connection sshd processes), keeps listening. */
  dropConnections(): Promise<number>;
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Direct children of `pid`, from /proc (Linux). */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // Fields after the parenthesised command name: state, ppid, ...
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) out.push(Number(name));
  }
  return out;
}

/** Waits (bounded) until the child logs that it listens, exits, or the time is up. */
function waitListening(child: ChildProcess, log: () => string): Promise<'listening' | 'exited'> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`sshd did not start within ${START_TIMEOUT_MS} ms:\n${log()}`));
    }, START_TIMEOUT_MS);
    const onData = () => {
      if (/Server listening on/.test(log())) {
        cleanup();
        resolve('listening');
      }
    };
    const onExit = () => {
      cleanup();
      resolve('exited');
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    onData();
  });
}

async function keygen(path: string, type = 'ed25519'): Promise<string> {
  expectOk('ssh-keygen', await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', 'restic-ts-test', '-f', path], { timeoutMs: 30_000 }));
  return (await readFile(`${path}.pub`, 'utf8')).trim();
}

/** Starts sshd on a free port of 127.0.0.1 and waits until it accepts connections. */
export async function startSshd(): Promise<Sshd> {
  const dir = await mkdtemp(join(tmpdir(), 'restic-ts-sshd-'));
  let child: ChildProcess | undefined;
  try {
    const hostPub = await keygen(join(dir, 'host_ed25519'));
    const hostRsaPub = await keygen(join(dir, 'host_rsa'), 'rsa');
    const clientPub = await keygen(join(dir, 'client_ed25519'));
    await keygen(join(dir, 'wrong_ed25519'));
    await writeFile(join(dir, 'authorized_keys'), `${clientPub}\n`, { mode: 0o600 });
    const loginDir = join(dir, 'home');
    await mkdir(loginDir);
    // Privilege separation needs this directory when sshd runs as root.
    if (process.getuid?.() === 0) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

    let port = 0;
    let stderr = '';
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      const config = join(dir, 'sshd_config');
      await writeFile(
        config,
        [
          'ListenAddress 127.0.0.1',
          `Port ${port}`,
          `HostKey ${join(dir, 'host_ed25519')}`,
          `HostKey ${join(dir, 'host_rsa')}`,
          `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          `PidFile ${join(dir, 'sshd.pid')}`,
          'StrictModes no',
          'UsePAM no',
          'PermitRootLogin prohibit-password',
          'LogLevel INFO',
          `Subsystem sftp internal-sftp -d ${loginDir}`,
          '',
        ].join('\n'),
      );
      stderr = '';
      child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString('utf8')).slice(-20_000);
      });
      const state = await waitListening(child, () => stderr);
      if (state === 'listening') break;
      // Another process may have taken the port between freePort() and sshd's bind.
      if (attempt >= 2 || !/Address already in use/.test(stderr)) throw new Error(`sshd exited early:\n${stderr}`);
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await accepts(port))) {
      if (Date.now() > deadline) throw new Error(`sshd does not accept connections on port ${port}:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const knownLine = (pub: string) => `[127.0.0.1]:${port} ${pub.split(' ').slice(0, 2).join(' ')}`;
    const knownHostsLine = knownLine(hostPub);
    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, `${knownHostsLine}\n`);
    const user = userInfo().username;
    const keyFile = join(dir, 'client_ed25519');
    const server = child!;
    const sshdPid = server.pid!;
    const dropConnections = async (): Promise<number> => {
      const pids = await childrenOf(sshdPid);
      for (const pid of pids) process.kill(pid, 'SIGTERM');
      return pids.length;
    };
    return {
      host: '127.0.0.1',
      port,
      user,
      keyFile,
      wrongKeyFile: join(dir, 'wrong_ed25519'),
      knownHostsFile,
      knownHostsLine,
      knownHostsLineRsa: knownLine(hostRsaPub),
      loginDir,
      dir,
      sshCommand: [
        'ssh',
        '-F /dev/null',
        `-i ${keyFile}`,
        `-p ${port}`,
        `-o UserKnownHostsFile=${knownHostsFile}`,
        '-o StrictHostKeyChecking=yes',
        '-o BatchMode=yes',
        '-o IdentitiesOnly=yes',
        `${user}@127.0.0.1`,
        '-s sftp',
      ].join(' '),
      dropConnections,
      async close() {
        await dropConnections().catch(() => 0);
        if (server.exitCode === null && server.signalCode === null) {
          const exited = new Promise<void>((r) => server.once('exit', () => r()));
          server.kill('SIGTERM');
          const timer = setTimeout(() => server.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    child?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
