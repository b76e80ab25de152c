import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { defaultTrustedCAs, extraCaCertsAreDeferred } from '../../backends/trust.js';
import { ResticError, UsageError } from '../../errors.js';
import type { CheOperationOptions } from '../../che/devenv/chectl-client.js';
import type { OperationStatus } from '../../che/types.js';
import { out, type Command, type Values } from '../command.js';

// The Kubernetes client takes seconds to load: it is imported only when a che command runs.
const SUBCOMMANDS = ['server:backup', 'server:restore', 'operator'] as const;
const DEFAULT_CHE_NAMESPACE = 'eclipse-che';
const DEFAULT_TIMEOUT_MS = 30 * 60_000;

/** A string flag, else its environment variable; empty values count as unset. `alias`: the global flag sharing its short form. */
function flag(v: Values, name: string, env?: string, alias?: string): string | undefined {
  const given = v[name] ?? (alias ? v[alias] : undefined);
  if (typeof given === 'string' && given !== '') return given;
  const fromEnv = env ? process.env[env] : undefined;
  return fromEnv === '' ? undefined : fromEnv;
}

/** `--timeout`: plain seconds or a number with s/m/h. */
export function parseTimeout(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_TIMEOUT_MS;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m?.[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  const ms = m ? Number(m[1]) * unit : NaN;
  if (!(ms > 0) || !Number.isFinite(ms)) throw new UsageError(`invalid --timeout "${raw}": use seconds or e.g. 90s, 30m, 1h`);
  return Math.round(ms);
}

async function loadKubeConfig(path: string | undefined): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { allowPlainHttp, mapClusters } = await import('../../che/devenv/kube.js');
  const kc = new KubeConfig();
  try {
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (e) {
    throw new UsageError(`cannot load the Kubernetes configuration${path ? ` ${path}` : ''}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!kc.getCurrentCluster()) throw new UsageError('no Kubernetes cluster configured: give --kubeconfig FILE or set KUBECONFIG');
  // Started as the restic-ts command, Node's default trust lacks the NODE_EXTRA_CA_CERTS bundle: a
  // cluster that relies on the default trust gets it as its CA data (parsed per connection, as any is).
  if (!extraCaCertsAreDeferred()) return allowPlainHttp(kc);
  let caData: string | undefined;
  return mapClusters(allowPlainHttp(kc), (c) => {
    if (!c.server.startsWith('https:') || c.caData || c.caFile || c.skipTLSVerify) return c;
    caData ??= Buffer.from(defaultTrustedCAs().join('\n')).toString('base64');
    return { ...c, caData };
  });
}

/** Rewrites one status line on a terminal; prints each change as a line otherwise. */
function progressPrinter(what: string, quiet: boolean): { update(s: OperationStatus): void; done(): void } {
  const tty = process.stderr.isTTY === true;
  let shown = false;
  return {
    update(s) {
      if (quiet) return;
      const text = `${what}: ${s.state ?? 'waiting for the controller'}${s.stage ? ` - ${s.stage}` : ''}`;
      if (tty) {
        process.stderr.write(`\r\x1b[2K${text}`);
        shown = true;
      } else process.stderr.write(`${text}\n`);
    },
    done() {
      if (shown) process.stderr.write('\n');
      shown = false;
    },
  };
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

async function commonOptions(v: Values, timeoutMs: number, signal: AbortSignal): Promise<CheOperationOptions> {
  const sshKeyText = flag(v, 'ssh-key', 'SSH_KEY');
  const sshKeyFile = flag(v, 'ssh-key-file', 'SSH_KEY_FILE');
  if (sshKeyText && sshKeyFile) throw new UsageError('give only one of --ssh-key and --ssh-key-file');
  let sshKey = sshKeyText;
  if (sshKeyFile) {
    sshKey = await readFile(sshKeyFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read the SSH key file ${sshKeyFile}: ${e.code ?? e.message}`);
    });
  }
  const knownHostsFile = flag(v, 'ssh-known-hosts-file');
  const options: CheOperationOptions = {
    kubeConfig: await loadKubeConfig(flag(v, 'kubeconfig', 'KUBECONFIG')),
    namespace: flag(v, 'chenamespace', 'CHE_NAMESPACE') ?? DEFAULT_CHE_NAMESPACE,
    // -r and -p are also restic's global --repo / --password-file; in `che` they mean chectl's flags.
    repositoryUrl: flag(v, 'repository-url', 'BACKUP_REPOSITORY_URL', 'repo'),
    repositoryPassword: flag(v, 'repository-password', 'BACKUP_REPOSITORY_PASSWORD', 'password-file'),
    username: flag(v, 'username', 'REST_SERVER_USERNAME'),
    password: flag(v, 'password', 'REST_SERVER_PASSWORD'),
    awsAccessKeyId: flag(v, 'aws-access-key-id', 'AWS_ACCESS_KEY_ID'),
    awsSecretAccessKey: flag(v, 'aws-secret-access-key', 'AWS_SECRET_ACCESS_KEY'),
    sshKey,
    backupServerConfigName: flag(v, 'backup-server-config-name', 'BACKUP_SERVER_CONFIG_NAME'),
    timeoutMs,
    signal,
    onWarning: (m) => process.stderr.write(`Warning: ${m}\n`),
  };
  if (knownHostsFile) {
    options.sshKnownHosts = await readFile(knownHostsFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read the known_hosts file ${knownHostsFile}: ${e.code ?? e.message}`);
    });
  }
  return options;
}

/** Aborts on SIGINT/SIGTERM while `fn` runs. */
async function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const stop = (s: NodeJS.Signals): void => controller.abort(new ResticError(`interrupted by ${s}`));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

async function runOperator(v: Values, quiet: boolean): Promise<number> {
  const { startCheController } = await import('../../che/controller.js');
  const kubeConfig = await loadKubeConfig(flag(v, 'kubeconfig', 'KUBECONFIG'));
  const namespace = flag(v, 'chenamespace', 'CHE_NAMESPACE') ?? DEFAULT_CHE_NAMESPACE;
  let onSignal: ((s: NodeJS.Signals) => void) | undefined;
  const received = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = resolve;
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const controller = startCheController({
    kubeConfig,
    namespace,
    log: quiet ? undefined : (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
  });
  try {
    await Promise.race([controller.ready, controller.done]);
    if (!quiet) await out(`watching Che backup and restore resources in namespace ${namespace}\n`);
    // `done` rejects when watching failed for good: that ends the process with the error.
    const signal = await Promise.race([received, controller.done.then(() => undefined)]);
    await controller.stop();
    if (!quiet && signal) await out(`received ${signal}, controller stopped\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal!);
    process.off('SIGTERM', onSignal!);
    await controller.stop();
  }
}

export const cheCommand: Command = {
  usage: `server:backup|server:restore|operator [flags]

  server:backup   back up Che through a CheClusterBackup; prints "Backup snapshot ID: <id>"
  server:restore  restore Che through a CheClusterRestore
  operator        run the backup/restore controller for the namespace until SIGINT/SIGTERM

Flags (environment variable in parentheses):
  -n, --chenamespace NS            Che's namespace (CHE_NAMESPACE), default eclipse-che
  -r, --repository-url URL         rest:…, s3:… or sftp:… repository (BACKUP_REPOSITORY_URL)
  -p, --repository-password PASS   repository password (BACKUP_REPOSITORY_PASSWORD)
      --username / --password      REST server credentials (REST_SERVER_USERNAME / REST_SERVER_PASSWORD)
      --aws-access-key-id / --aws-secret-access-key   S3 credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)
      --ssh-key KEY / --ssh-key-file FILE             SFTP private key (SSH_KEY / SSH_KEY_FILE)
      --ssh-known-hosts-file FILE  pin the SFTP server's host key (known_hosts lines)
      --backup-server-config-name NAME   use this CheBackupServerConfiguration (BACKUP_SERVER_CONFIG_NAME)
  -s, --snapshot-id ID             restore: snapshot id, prefix or "latest" (default latest)
      --backup-cr-name NAME        restore: what this CheClusterBackup saved
      --batch                      restore: do not ask for confirmation
      --timeout DURATION           give up after this long (e.g. 90s, 30m; default 30m)
      --kubeconfig FILE            Kubernetes configuration (KUBECONFIG)`,
  options: {
    chenamespace: { type: 'string', short: 'n' },
    'repository-url': { type: 'string', short: 'r' },
    'repository-password': { type: 'string', short: 'p' },
    username: { type: 'string' },
    password: { type: 'string' },
    'aws-access-key-id': { type: 'string' },
    'aws-secret-access-key': { type: 'string' },
    'ssh-key': { type: 'string' },
    'ssh-key-file': { type: 'string' },
    'ssh-known-hosts-file': { type: 'string' },
    'backup-server-config-name': { type: 'string' },
    'snapshot-id': { type: 'string', short: 's' },
    'backup-cr-name': { type: 'string' },
    batch: { type: 'boolean' },
    timeout: { type: 'string' },
    kubeconfig: { type: 'string' },
  },
  async run(g, v, args) {
    const sub = args[0];
    if (!sub || !(SUBCOMMANDS as readonly string[]).includes(sub) || args.length > 1) {
      throw new UsageError(`che needs one of ${SUBCOMMANDS.join(', ')}${sub && args.length === 1 ? `, not "${sub}"` : ''}`);
    }
    if (sub === 'operator') return runOperator(v, g.quiet);
    const timeoutMs = parseTimeout(v.timeout as string | undefined);

    if (sub === 'server:backup') {
      for (const f of ['snapshot-id', 'backup-cr-name'] as const) if (v[f] !== undefined) throw new UsageError(`--${f} is a server:restore flag`);
      return interruptible(async (signal) => {
        const { cheServerBackup } = await import('../../che/devenv/chectl-client.js');
        const opts = await commonOptions(v, timeoutMs, signal);
        const progress = progressPrinter('backup', g.quiet || g.json);
        try {
          const result = await cheServerBackup({ ...opts, onProgress: (s) => progress.update(s) });
          progress.done();
          if (g.json) await out(`${JSON.stringify({ message_type: 'summary', name: result.name, backup_server_config: result.backupServerConfigRef ?? null, ...result.status })}\n`);
          else await out(`Backup snapshot ID: ${result.status.snapshotId}\n`);
          return 0;
        } finally {
          progress.done();
        }
      });
    }

    return interruptible(async (signal) => {
      const { cheServerRestore } = await import('../../che/devenv/chectl-client.js');
      const opts = await commonOptions(v, timeoutMs, signal);
      const snapshotId = flag(v, 'snapshot-id');
      const backupCrName = flag(v, 'backup-cr-name');
      if (v.batch !== true && process.stdin.isTTY) {
        const from = backupCrName ? `the snapshot of backup ${backupCrName}` : `snapshot ${snapshotId ?? 'latest'}`;
        const yes = await confirm(`Restore Che in namespace ${opts.namespace} from ${from}? Che's current data there will be replaced. [y/n] `);
        if (!yes) {
          await out('restore cancelled\n');
          return 1;
        }
      }
      const progress = progressPrinter('restore', g.quiet || g.json);
      try {
        const result = await cheServerRestore({ ...opts, snapshotId, backupCrName, onProgress: (s) => progress.update(s) });
        progress.done();
        if (g.json) await out(`${JSON.stringify({ message_type: 'summary', name: result.name, backup_server_config: result.backupServerConfigRef ?? null, ...result.status })}\n`);
        else await out(`Restore finished: ${result.status.message ?? 'Succeeded'}\n`);
        return 0;
      } finally {
        progress.done();
      }
    });
  },
};
