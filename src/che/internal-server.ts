import { randomBytes } from 'node:crypto';
import type { V1Deployment, V1PersistentVolumeClaim, V1Secret, V1Service } from '@kubernetes/client-node';
import { custom, DEFAULT_TIMEOUTS, type CheTimeouts, type InternalServerOptions } from './common.js';
import type { ConfigurationOptions } from '@kubernetes/client-node';
import { isConflict, type CheKube } from './kube.js';
import {
  BACKUP_PART_OF,
  CHE_API_VERSION,
  INTERNAL_SERVER,
  LABELS,
  PLURALS,
  SECRET_KEYS,
  type CheBackupServerConfiguration,
  type RestServerConfig,
} from './types.js';
import { errorMessage, poll, POLL_INTERVAL_MS } from './util.js';

export const DEFAULT_SERVER_IMAGE = 'restic-ts:0.1.0';

/** Labels of every internal-server object: part-of backup.che.eclipse.org keeps them out of a restore's clean-up. */
export function internalServerLabels(): Record<string, string> {
  return {
    app: 'che',
    component: INTERNAL_SERVER.component,
    [LABELS.name]: 'che',
    [LABELS.instance]: 'che',
    [LABELS.component]: INTERNAL_SERVER.component,
    [LABELS.partOf]: BACKUP_PART_OF,
    [LABELS.managedBy]: 'restic-ts',
  };
}

/** The configuration che-operator wrote for its internal server (in-cluster Service address, repository "che"). */
export function internalServerConfig(namespace: string): RestServerConfig {
  return {
    protocol: 'http',
    hostname: `${INTERNAL_SERVER.service}.${namespace}.svc`,
    port: INTERNAL_SERVER.port,
    repositoryPath: INTERNAL_SERVER.repositoryPath,
    repositoryPasswordSecretRef: INTERNAL_SERVER.passwordSecret,
  };
}

function deployment(namespace: string, image: string): V1Deployment {
  const labels = internalServerLabels();
  const selector = { app: 'che', component: INTERNAL_SERVER.component };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: INTERNAL_SERVER.deployment, namespace, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: selector },
      // One writer on a ReadWriteOnce volume.
      strategy: { type: 'Recreate' },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'rest-server',
              image,
              command: ['restic-ts', 'serve', '--path', '/data', '--listen', `:${INTERNAL_SERVER.port}`, '--no-auth'],
              ports: [{ name: 'rest', containerPort: INTERNAL_SERVER.port, protocol: 'TCP' }],
              // Unlike che-operator's server (data in the container, lost on restart), repositories live on a PVC.
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
              readinessProbe: { tcpSocket: { port: INTERNAL_SERVER.port }, periodSeconds: 5 },
              securityContext: { capabilities: { drop: ['ALL'] }, allowPrivilegeEscalation: false },
            },
          ],
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: INTERNAL_SERVER.pvc } }],
          restartPolicy: 'Always',
        },
      },
    },
  };
}

function pvc(namespace: string, storage: string): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: INTERNAL_SERVER.pvc, namespace, labels: internalServerLabels() },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage } } },
  };
}

function service(namespace: string): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: INTERNAL_SERVER.service, namespace, labels: internalServerLabels() },
    spec: {
      selector: { app: 'che', component: INTERNAL_SERVER.component },
      ports: [{ name: 'rest', port: INTERNAL_SERVER.port, targetPort: INTERNAL_SERVER.port, protocol: 'TCP' }],
    },
  };
}

function passwordSecret(namespace: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: INTERNAL_SERVER.passwordSecret, namespace, labels: internalServerLabels() },
    type: 'Opaque',
    // Random, and never rewritten afterwards: a new password would lock us out of the repository.
    data: { [SECRET_KEYS.repoPassword]: Buffer.from(randomBytes(24).toString('base64url')).toString('base64') },
  };
}

async function createIfMissing(kube: CheKube, what: string, signal: AbortSignal | undefined, create: (o: ConfigurationOptions) => Promise<unknown>): Promise<boolean> {
  try {
    await kube.call(`create ${what}`, signal, create);
    return true;
  } catch (err) {
    if (isConflict(err)) return false;
    throw err;
  }
}

export interface EnsureInternalServerOptions extends InternalServerOptions {
  timeouts?: Partial<CheTimeouts>;
  signal?: AbortSignal;
}

/**
 * Creates what is missing of the internal backup server (PVC, Deployment, Service, password Secret,
 * CheBackupServerConfiguration `backup-rest-server-configuration`), puts the configuration back if someone changed
 * it, and waits until the server answers HTTP.
 */
export async function ensureInternalServer(kube: CheKube, namespace: string, options: EnsureInternalServerOptions = {}): Promise<void> {
  const { signal } = options;
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  await createIfMissing(kube, `PVC ${INTERNAL_SERVER.pvc}`, signal, (o) =>
    kube.core.createNamespacedPersistentVolumeClaim({ namespace, body: pvc(namespace, options.storage ?? '10Gi') }, o),
  );
  await createIfMissing(kube, `deployment ${INTERNAL_SERVER.deployment}`, signal, (o) =>
    kube.apps.createNamespacedDeployment({ namespace, body: deployment(namespace, options.image ?? DEFAULT_SERVER_IMAGE) }, o),
  );
  await createIfMissing(kube, `service ${INTERNAL_SERVER.service}`, signal, (o) => kube.core.createNamespacedService({ namespace, body: service(namespace) }, o));
  await createIfMissing(kube, `secret ${INTERNAL_SERVER.passwordSecret}`, signal, (o) =>
    kube.core.createNamespacedSecret({ namespace, body: passwordSecret(namespace) }, o),
  );

  const where = custom(namespace, PLURALS.backupServerConfiguration);
  const expected: CheBackupServerConfiguration = {
    apiVersion: CHE_API_VERSION,
    kind: 'CheBackupServerConfiguration',
    metadata: { name: INTERNAL_SERVER.configuration, namespace, labels: internalServerLabels() },
    spec: { rest: internalServerConfig(namespace) },
  };
  const existing = (await kube.find(`read CheBackupServerConfiguration ${INTERNAL_SERVER.configuration}`, signal, (o) =>
    kube.custom.getNamespacedCustomObject({ ...where, name: INTERNAL_SERVER.configuration }, o),
  )) as CheBackupServerConfiguration | undefined;
  if (!existing) {
    await createIfMissing(kube, `CheBackupServerConfiguration ${INTERNAL_SERVER.configuration}`, signal, (o) =>
      kube.custom.createNamespacedCustomObject({ ...where, body: expected }, o),
    );
  } else if (JSON.stringify(existing.spec) !== JSON.stringify(expected.spec)) {
    await kube.call(`replace CheBackupServerConfiguration ${INTERNAL_SERVER.configuration}`, signal, (o) =>
      kube.custom.replaceNamespacedCustomObject(
        {
          ...where,
          name: INTERNAL_SERVER.configuration,
          body: { ...expected, metadata: { ...expected.metadata, resourceVersion: existing.metadata.resourceVersion } },
        },
        o,
      ),
    );
  }

  // A fresh rest-server answers 404 to everything, so "answers at all" is the readiness signal (as che-operator).
  const url = options.url?.(namespace) ?? `http://${INTERNAL_SERVER.service}.${namespace}.svc:${INTERNAL_SERVER.port}/`;
  let last = 'no answer yet';
  await poll(
    `waiting for the internal backup server at ${url}`,
    { timeoutMs: timeouts.internalServer, intervalMs: POLL_INTERVAL_MS, signal },
    async (s) => {
      try {
        const res = await fetch(url, { method: 'HEAD', signal: s });
        await res.body?.cancel();
        return true;
      } catch (err) {
        last = errorMessage(err instanceof Error && err.cause instanceof Error ? err.cause : err);
        return undefined;
      }
    },
    () => last,
  );
}
