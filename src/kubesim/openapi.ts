// Just enough OpenAPI v3 for kubectl: `kubectl apply/create` read it to learn that the server
// validates fields itself (the `fieldValidation` PATCH parameter); without it kubectl refuses to
// validate. Built-in types deliberately publish no component schemas, so `kubectl apply` computes
// strategic merge patches from its compiled-in types instead of from a schema that lacks merge keys.
import { createHash } from 'node:crypto';
import { groupVersion, type Registry, type ResourceType } from './resources.js';
import type { JsonObject } from './types.js';

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

function gvs(registry: Registry): { group: string; version: string }[] {
  const seen = new Map<string, { group: string; version: string }>();
  for (const t of registry.all()) for (const v of t.versions) seen.set(gvPath(t.group, v.name), { group: t.group, version: v.name });
  return [...seen.values()];
}

/** `/openapi/v3`: one entry per group/version, each with a content hash for client caches. */
export function openapiIndex(registry: Registry): JsonObject {
  const paths: JsonObject = {};
  for (const { group, version } of gvs(registry)) {
    const p = gvPath(group, version);
    const hash = createHash('sha512').update(JSON.stringify(openapiDocument(registry, group, version))).digest('hex').slice(0, 128);
    paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash.toUpperCase()}` };
  }
  return { paths };
}

const QUERY = (name: string): JsonObject => ({ name, in: 'query', schema: { type: 'string', uniqueItems: true } });

function operations(t: ResourceType, version: string, item: boolean): JsonObject {
  const gvk = { group: t.group, version, kind: t.kind };
  const ref = { $ref: `#/components/schemas/${schemaName(t, version)}` };
  const op = (action: string, extra: JsonObject = {}): JsonObject => ({
    operationId: `${action}${t.kind}`,
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk,
    responses: { '200': { description: 'OK', content: { 'application/json': { schema: ref } } } },
    ...extra,
  });
  const writeParams = [QUERY('dryRun'), QUERY('fieldManager'), QUERY('fieldValidation')];
  if (!item) {
    return {
      get: op('list', { parameters: [QUERY('labelSelector'), QUERY('fieldSelector'), QUERY('limit'), QUERY('continue'), QUERY('watch'), QUERY('resourceVersion'), QUERY('timeoutSeconds')] }),
      post: op('post', { parameters: writeParams, requestBody: { content: { 'application/json': { schema: ref } }, required: true } }),
    };
  }
  return {
    get: op('get'),
    put: op('put', { parameters: writeParams, requestBody: { content: { 'application/json': { schema: ref } }, required: true } }),
    patch: op('patch', {
      parameters: [...writeParams, QUERY('force')],
      requestBody: {
        content: {
          'application/json-patch+json': { schema: { type: 'object' } },
          'application/merge-patch+json': { schema: { type: 'object' } },
          'application/apply-patch+yaml': { schema: { type: 'object' } },
        },
        required: true,
      },
    }),
    delete: op('delete', { parameters: [QUERY('dryRun'), QUERY('propagationPolicy'), QUERY('gracePeriodSeconds')] }),
  };
}

function schemaName(t: ResourceType, version: string): string {
  const group = t.group ? t.group.split('.').reverse().join('.') : 'io.k8s.api.core';
  return `${group}.${version}.${t.kind}`;
}

/** The document for one group/version; undefined when nothing is served there. */
export function openapiDocument(registry: Registry, group: string, version: string): JsonObject | undefined {
  const types = registry.all().filter((t) => t.group === group && t.versions.some((v) => v.name === version));
  if (types.length === 0) return undefined;
  const paths: JsonObject = {};
  const schemas: JsonObject = {};
  const prefix = `/${gvPath(group, version)}`;
  for (const t of types) {
    const base = t.namespaced ? `${prefix}/namespaces/{namespace}/${t.plural}` : `${prefix}/${t.plural}`;
    paths[base] = operations(t, version, false);
    paths[`${base}/{name}`] = operations(t, version, true);
    const v = t.versions.find((x) => x.name === version);
    // CRD schemas are published (kubectl explain reads them); built-ins get none, see above.
    if (t.crd && v?.schema) {
      schemas[schemaName(t, version)] = { ...(v.schema as unknown as JsonObject), 'x-kubernetes-group-version-kind': [{ group: t.group, version, kind: t.kind }] };
    } else {
      schemas[schemaName(t, version)] = { type: 'object', description: `${t.kind} (${groupVersion(t.group, version)})` };
    }
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.0' }, paths, components: { schemas } };
}
