// Small Kubernetes helpers shared by the dev environment (sample Che, operator double, chectl client).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ApiException,
  ApiextensionsV1Api,
  AppsV1Api,
  type Cluster,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  loadAllYaml,
  PatchStrategy,
  setHeaderOptions,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { ResticError } from '../../index.js';

export interface KubeClients {
  core: CoreV1Api;
  apps: AppsV1Api;
  custom: CustomObjectsApi;
  ext: ApiextensionsV1Api;
}

export function kubeClients(kc: KubeConfig): KubeClients {
  return {
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    ext: kc.makeApiClient(ApiextensionsV1Api),
  };
}

/**
 * client-node refuses `http://` API servers unless TLS verification is off, which kubectl does not require (e.g.
 * `kubectl proxy`, kubesim): mark plain-HTTP clusters so, since there is no TLS to verify.
 */
export function allowPlainHttp(kc: KubeConfig): KubeConfig {
  return mapClusters(kc, (c) => (c.server.startsWith('http:') && !c.skipTLSVerify ? { ...c, skipTLSVerify: true } : c));
}

/** `kc` with each cluster replaced by `fix(cluster)`; `kc` itself when nothing changes. */
export function mapClusters(kc: KubeConfig, fix: (c: Cluster) => Cluster): KubeConfig {
  const clusters = kc.getClusters().map(fix);
  if (clusters.every((c, i) => c === kc.getClusters()[i])) return kc;
  const fixed = new KubeConfig();
  fixed.loadFromOptions({ clusters, users: kc.getUsers(), contexts: kc.getContexts(), currentContext: kc.getCurrentContext() });
  return fixed;
}

/** A KubeConfig from kubeconfig YAML text, plain-HTTP servers allowed. */
export function kubeConfigFromYaml(yaml: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(yaml);
  return allowPlainHttp(kc);
}

/** True when `e` is an API answer with HTTP status `code`. */
export function isApiStatus(e: unknown, code: number): boolean {
  return e instanceof ApiException && e.code === code;
}

/** The API server's one-line reason for a failed call, else the error's message. */
export function apiMessage(e: unknown): string {
  if (e instanceof ApiException) {
    const body: unknown = e.body;
    let reason = '';
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: unknown };
        reason = typeof parsed.message === 'string' ? parsed.message : body;
      } catch {
        reason = body;
      }
    } else if (typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string') {
      reason = (body as { message: string }).message;
    }
    return `HTTP ${e.code}${reason ? `: ${reason.split('\n')[0]}` : ''}`;
  }
  return e instanceof Error ? e.message : String(e);
}

/** Options making a client-node patch call send a JSON merge patch. */
export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** `undefined` instead of a 404 error. */
export async function orNotFound<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    if (isApiStatus(e, 404)) return undefined;
    throw e;
  }
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Polls `probe` until it returns a value other than undefined; throws `what` after `timeoutMs`.
 * A probe that throws ends the wait with that error.
 */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, opts: { intervalMs?: number; signal?: AbortSignal } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) throw new ResticError(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(Math.min(opts.intervalMs ?? 200, Math.max(1, deadline - Date.now())), opts.signal);
  }
}

/** The repository's `deploy/crds` folder, found upwards from this module (works from src/ and dist/src/). */
export function crdDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'deploy', 'crds');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new ResticError('cannot find the deploy/crds folder of restic-ts');
    dir = parent;
  }
}

/** Creates (or replaces) the CRDs in the given YAML files and waits until their resources are served. */
export async function applyCrds(kc: KubeConfig, files: string[], timeoutMs = 30_000): Promise<void> {
  const { ext, custom } = kubeClients(kc);
  const crds: V1CustomResourceDefinition[] = [];
  for (const file of files) {
    // client-node's own loader: it maps `x-kubernetes-*` keys to the model's field names, which the
    // serializer needs (plain YAML objects would lose them on the way out).
    for (const doc of loadAllYaml(await readFile(file, 'utf8'))) {
      if (doc && (doc as { kind?: unknown }).kind === 'CustomResourceDefinition') crds.push(doc as V1CustomResourceDefinition);
    }
  }
  for (const crd of crds) {
    const name = crd.metadata!.name!;
    const existing = await orNotFound(ext.readCustomResourceDefinition({ name }));
    if (existing) await ext.replaceCustomResourceDefinition({ name, body: { ...crd, metadata: { ...crd.metadata, resourceVersion: existing.metadata?.resourceVersion } } });
    else await ext.createCustomResourceDefinition({ body: crd });
  }
  for (const crd of crds) {
    const served = crd.spec.versions.find((v) => v.served) ?? crd.spec.versions[0]!;
    await waitFor(`CRD ${crd.metadata!.name!} to be served`, timeoutMs, async () => {
      try {
        await custom.listClusterCustomObject({ group: crd.spec.group, version: served.name, plural: crd.spec.names.plural, limit: 1 });
        return true;
      } catch (e) {
        if (isApiStatus(e, 404)) return undefined;
        throw e;
      }
    });
  }
}
