// The CRDs and samples in deploy/ with the real kubectl against kubesim: they apply as they are, the one-of
// rule of CheBackupServerConfiguration and the state enum are enforced, and `kubectl get` shows the columns.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../src/kubesim/index.js';
import { kubectlFor, type Kubectl } from './helpers/kubectl.js';

const DEPLOY = join(import.meta.dirname, '..', 'deploy');
let api: ApiServer;
let kubectl: Kubectl;

beforeAll(async () => {
  api = await startApiServer();
  kubectl = await kubectlFor(api);
}, 60_000);

afterAll(async () => {
  await kubectl?.close();
  await api?.close();
});

const config = (name: string, spec: string) => `apiVersion: org.eclipse.che/v1
kind: CheBackupServerConfiguration
metadata:
  name: ${name}
spec:
${spec}`;

const REST = `  rest:
    hostname: h
    repositoryPasswordSecretRef: p
`;
const SFTP = `  sftp:
    username: u
    hostname: h
    repositoryPath: /srv
    repositoryPasswordSecretRef: p
    sshKeySecretRef: k
`;

describe('deploy/crds and deploy/samples', () => {
  it('every CRD is structural: group org.eclipse.che, v1, namespaced, status subresource', async () => {
    const files = await readdir(join(DEPLOY, 'crds'));
    expect(files.sort()).toEqual([
      'org.eclipse.che_chebackupserverconfigurations.yaml',
      'org.eclipse.che_checlusterbackups.yaml',
      'org.eclipse.che_checlusterrestores.yaml',
      'org.eclipse.che_checlusters.yaml',
    ]);
    for (const f of files) {
      const [crd] = loadAll(await readFile(join(DEPLOY, 'crds', f), 'utf8')) as {
        spec: { group: string; scope: string; versions: { name: string; subresources?: { status?: object }; schema: { openAPIV3Schema: { type: string } } }[] };
      }[];
      expect(crd!.spec.group).toBe('org.eclipse.che');
      expect(crd!.spec.scope).toBe('Namespaced');
      expect(crd!.spec.versions.map((v) => [v.name, v.subresources?.status, v.schema.openAPIV3Schema.type])).toEqual([['v1', {}, 'object']]);
    }
  });

  it('kubectl applies the CRDs and all samples', async () => {
    const crds = await kubectl.ok(['apply', '-f', join(DEPLOY, 'crds')]);
    expect(crds.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/checlusterbackups.org.eclipse.che created');
    await kubectl.ok(['create', 'namespace', 'che']);
    const samples = await kubectl.ok(['apply', '-n', 'che', '-f', join(DEPLOY, 'samples')]);
    for (const line of [
      'chebackupserverconfiguration.org.eclipse.che/rest-backup-server created',
      'chebackupserverconfiguration.org.eclipse.che/s3-backup-server created',
      'chebackupserverconfiguration.org.eclipse.che/sftp-backup-server created',
      'checlusterbackup.org.eclipse.che/che-backup-1 created',
      'checlusterbackup.org.eclipse.che/che-backup-internal-1 created',
      'checlusterrestore.org.eclipse.che/che-restore-1 created',
    ]) {
      expect(samples.stdout).toContain(line);
    }
  });

  it('a configuration must set exactly one of rest, awss3, sftp', async () => {
    const both = await kubectl.run(['apply', '-n', 'che', '-f', await kubectl.file('both.yaml', config('both', REST + SFTP))]);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/must validate one and only one schema \(oneOf\)\. Found 2 valid alternatives/);
    const none = await kubectl.run(['apply', '-n', 'che', '-f', await kubectl.file('none.yaml', config('none', '  {}\n'))]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/must validate one and only one schema \(oneOf\)\. Found none valid/);
    await kubectl.ok(['apply', '-n', 'che', '-f', await kubectl.file('one.yaml', config('one', SFTP))]);
  });

  it('required fields and the protocol enum are checked', async () => {
    const noPassword = await kubectl.run(['apply', '-n', 'che', '-f', await kubectl.file('nopw.yaml', config('nopw', '  rest:\n    hostname: h\n'))]);
    expect(noPassword.code).not.toBe(0);
    expect(noPassword.stderr).toMatch(/repositoryPasswordSecretRef/);
    const ftp = await kubectl.run(['apply', '-n', 'che', '-f', await kubectl.file('ftp.yaml', config('ftp', REST + '    protocol: ftp\n'))]);
    expect(ftp.code).not.toBe(0);
    expect(ftp.stderr).toMatch(/protocol/);
  });

  it('status.state only takes InProgress, Succeeded or Failed, and kubectl get shows state, stage and snapshot', async () => {
    const bad = await kubectl.run(['patch', '-n', 'che', 'checlusterbackup', 'che-backup-1', '--subresource=status', '--type=merge', '-p', '{"status":{"state":"Done"}}']);
    expect(bad.code).not.toBe(0);
    await kubectl.ok([
      'patch', '-n', 'che', 'checlusterbackup', 'che-backup-1', '--subresource=status', '--type=merge',
      '-p', '{"status":{"state":"Succeeded","snapshotId":"1a2b3c4d","message":"Backup successfully finished"}}',
    ]);
    const table = await kubectl.ok(['get', '-n', 'che', 'checlusterbackups']);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+STATE\s+STAGE\s+SNAPSHOT\s+AGE$/);
    expect(table.stdout).toMatch(/che-backup-1\s+Succeeded\s+1a2b3c4d/);
  });
});
