// Per-type behaviour of the built-in resources: defaulting on write and the validation rules the
// tests and the Che controller can run into, worded like the real API server's field errors.
import { badRequest, type FieldError } from './errors.js';
import { clone, isObject, jsonEqual, type JsonObject, type KubeObject } from './types.js';

export interface Strategy {
  /** Defaults applied to every written object (create and update). */
  defaults?(obj: KubeObject): void;
  /** Create-time only: server-assigned fields, initial status. */
  prepareCreate?(obj: KubeObject, ctx: CreateContext): void;
  validate?(obj: KubeObject, old: KubeObject | undefined): FieldError[];
}

export const NODE_NAME = 'kubesim-node';

export interface CreateContext {
  allocateIp(): string;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

export type NameRule = 'subdomain' | 'label' | 'dns1035';

function nameError(rule: NameRule, name: string): string | undefined {
  switch (rule) {
    case 'subdomain':
      return name.length <= 253 && DNS1123_SUBDOMAIN.test(name)
        ? undefined
        : `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`;
    case 'label':
      return name.length <= 63 && DNS1123_LABEL.test(name)
        ? undefined
        : `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`;
    case 'dns1035':
      return name.length <= 63 && DNS1035_LABEL.test(name)
        ? undefined
        : `a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`;
  }
}

function labelKeyError(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const [prefix, name] = slash >= 0 ? [key.slice(0, slash), key.slice(slash + 1)] : ['', key];
  if (slash >= 0 && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) return 'prefix part must be a lowercase RFC 1123 subdomain';
  if (name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return `name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`;
  }
  return undefined;
}

/** ObjectMeta rules every type shares: name format, labels, annotations. */
export function validateMeta(obj: KubeObject, rule: NameRule): FieldError[] {
  const errs: FieldError[] = [];
  const name = obj.metadata.name ?? '';
  const e = nameError(rule, name);
  if (e) errs.push({ field: 'metadata.name', type: 'FieldValueInvalid', detail: `Invalid value: ${JSON.stringify(name)}: ${e}` });
  for (const [k, v] of Object.entries(obj.metadata.labels ?? {})) {
    const ke = labelKeyError(k);
    if (ke) errs.push({ field: 'metadata.labels', type: 'FieldValueInvalid', detail: `Invalid value: ${JSON.stringify(k)}: ${ke}` });
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) {
      errs.push({
        field: 'metadata.labels',
        type: 'FieldValueInvalid',
        detail: `Invalid value: ${JSON.stringify(v)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
      });
    }
  }
  let annotationBytes = 0;
  for (const [k, v] of Object.entries(obj.metadata.annotations ?? {})) {
    const ke = labelKeyError(k);
    if (ke) errs.push({ field: 'metadata.annotations', type: 'FieldValueInvalid', detail: `Invalid value: ${JSON.stringify(k)}: ${ke}` });
    annotationBytes += Buffer.byteLength(k) + Buffer.byteLength(String(v));
  }
  // The limit that makes client-side `kubectl apply` of very large CRDs fail on real clusters.
  if (annotationBytes > 262144) errs.push({ field: 'metadata.annotations', type: 'FieldValueTooLong', detail: 'Too long: must have at most 262144 bytes' });
  return errs;
}

function required(field: string): FieldError {
  return { field, type: 'FieldValueRequired', detail: 'Required value' };
}

function validateKeys(obj: KubeObject, field: 'data' | 'binaryData' | 'stringData'): FieldError[] {
  const errs: FieldError[] = [];
  const m = obj[field];
  if (!isObject(m)) return errs;
  for (const k of Object.keys(m)) {
    if (!CONFIG_KEY.test(k) || k.length > 253) {
      errs.push({
        field: `${field}[${k}]`,
        type: 'FieldValueInvalid',
        detail: `Invalid value: ${JSON.stringify(k)}: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
      });
    }
  }
  return errs;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** []byte fields are base64 in JSON; the real server fails decoding before validation. */
function checkBase64(obj: KubeObject, field: string): void {
  const m = obj[field];
  if (!isObject(m)) return;
  for (const v of Object.values(m)) {
    if (typeof v !== 'string' || !BASE64.test(v)) {
      throw badRequest(`${obj.kind} in version "v1" cannot be handled as a ${obj.kind}: illegal base64 data at input byte 0`);
    }
  }
}

function immutableData(obj: KubeObject, old: KubeObject | undefined, fields: string[]): FieldError[] {
  if (!old || old.immutable !== true) return [];
  const errs: FieldError[] = [];
  if (obj.immutable !== true) errs.push({ field: 'immutable', type: 'FieldValueForbidden', detail: 'Forbidden: field is immutable when `immutable` is set' });
  for (const f of fields) {
    if (!jsonEqual(obj[f] ?? {}, old[f] ?? {})) errs.push({ field: f, type: 'FieldValueForbidden', detail: 'Forbidden: field is immutable when `immutable` is set' });
  }
  return errs;
}

function defaultContainers(spec: JsonObject): void {
  for (const key of ['containers', 'initContainers']) {
    const list = spec[key];
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      if (!isObject(c)) continue;
      c.terminationMessagePath ??= '/dev/termination-log';
      c.terminationMessagePolicy ??= 'File';
      if (c.imagePullPolicy === undefined && typeof c.image === 'string') {
        const tagged = /:[^/]+$/.test(c.image.split('@')[0]) && !c.image.endsWith(':latest');
        c.imagePullPolicy = tagged || c.image.includes('@') ? 'IfNotPresent' : 'Always';
      }
      c.resources ??= {};
      if (Array.isArray(c.ports)) for (const p of c.ports) if (isObject(p)) p.protocol ??= 'TCP';
    }
  }
}

function defaultPodSpec(spec: JsonObject): void {
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.securityContext ??= {};
  spec.schedulerName ??= 'default-scheduler';
  spec.enableServiceLinks ??= true;
  spec.serviceAccountName ??= spec.serviceAccount ?? 'default';
  defaultContainers(spec);
}

function validatePodSpec(spec: unknown, path: string): FieldError[] {
  if (!isObject(spec)) return [required(path)];
  const cs = spec.containers;
  if (!Array.isArray(cs) || cs.length === 0) return [required(`${path}.containers`)];
  const errs: FieldError[] = [];
  const seen = new Set<string>();
  cs.forEach((c, i) => {
    const at = `${path}.containers[${i}]`;
    if (!isObject(c)) return errs.push(required(at));
    if (typeof c.name !== 'string' || c.name === '') errs.push(required(`${at}.name`));
    else {
      const e = nameError('label', c.name);
      if (e) errs.push({ field: `${at}.name`, type: 'FieldValueInvalid', detail: `Invalid value: ${JSON.stringify(c.name)}: ${e}` });
      if (seen.has(c.name)) errs.push({ field: `${at}.name`, type: 'FieldValueDuplicate', detail: `Duplicate value: ${JSON.stringify(c.name)}` });
      seen.add(c.name);
    }
    if (typeof c.image !== 'string' || c.image === '') errs.push(required(`${at}.image`));
    return undefined;
  });
  return errs;
}

function podStatusPending(obj: KubeObject): void {
  obj.status = { phase: 'Pending', qosClass: 'BestEffort' };
}

/** Pod spec fields that may change after creation (images, and a few scheduling-gate fields). */
function podSpecWithoutMutables(spec: unknown): unknown {
  const s = clone(spec ?? {});
  if (!isObject(s)) return s;
  for (const key of ['containers', 'initContainers']) {
    const list = s[key];
    if (Array.isArray(list)) for (const c of list) if (isObject(c)) delete c.image;
  }
  delete s.activeDeadlineSeconds;
  delete s.tolerations;
  return s;
}

const STRATEGIES: Record<string, Strategy> = {
  '/namespaces': {
    defaults(o) {
      o.metadata.labels = { ...o.metadata.labels, 'kubernetes.io/metadata.name': o.metadata.name ?? '' };
      const spec = isObject(o.spec) ? o.spec : {};
      spec.finalizers ??= ['kubernetes'];
      o.spec = spec;
    },
    prepareCreate(o) {
      o.status = { phase: 'Active' };
    },
  },
  '/secrets': {
    defaults(o) {
      o.type ??= 'Opaque';
      if (isObject(o.stringData)) {
        const data = isObject(o.data) ? o.data : {};
        for (const [k, v] of Object.entries(o.stringData)) data[k] = Buffer.from(String(v), 'utf8').toString('base64');
        o.data = data;
      }
      delete o.stringData;
    },
    validate(o, old) {
      checkBase64(o, 'data');
      const errs = validateKeys(o, 'data');
      const size = Object.values(isObject(o.data) ? o.data : {}).reduce<number>((n, v) => n + Buffer.from(String(v), 'base64').length, 0);
      if (size > 1024 * 1024) errs.push({ field: 'data', type: 'FieldValueTooLong', detail: 'Too long: may not be more than 1048576 bytes' });
      if (old && old.type !== o.type) errs.push({ field: 'type', type: 'FieldValueInvalid', detail: `Invalid value: ${JSON.stringify(o.type)}: field is immutable` });
      return [...errs, ...immutableData(o, old, ['data'])];
    },
  },
  '/configmaps': {
    validate(o, old) {
      checkBase64(o, 'binaryData');
      const errs = [...validateKeys(o, 'data'), ...validateKeys(o, 'binaryData')];
      if (isObject(o.data)) {
        for (const [k, v] of Object.entries(o.data)) {
          if (typeof v !== 'string') throw badRequest(`ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal ${typeof v} into Go struct field ConfigMap.data of type string`);
          if (isObject(o.binaryData) && k in o.binaryData) errs.push({ field: `data[${k}]`, type: 'FieldValueInvalid', detail: `Invalid value: ${JSON.stringify(k)}: duplicate of key present in binaryData` });
        }
      }
      return [...errs, ...immutableData(o, old, ['data', 'binaryData'])];
    },
  },
  '/pods': {
    defaults(o) {
      if (isObject(o.spec)) defaultPodSpec(o.spec);
    },
    prepareCreate(o) {
      // The scheduler's binding, done at once: there is only one node.
      if (isObject(o.spec)) o.spec.nodeName ??= NODE_NAME;
      podStatusPending(o);
    },
    validate(o, old) {
      const errs = validatePodSpec(o.spec, 'spec');
      if (old && !jsonEqual(podSpecWithoutMutables(o.spec), podSpecWithoutMutables(old.spec))) {
        errs.push({
          field: 'spec',
          type: 'FieldValueForbidden',
          detail: 'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
        });
      }
      return errs;
    },
  },
  '/services': {
    defaults(o) {
      const spec = isObject(o.spec) ? o.spec : {};
      spec.type ??= 'ClusterIP';
      spec.sessionAffinity ??= 'None';
      if (Array.isArray(spec.ports)) {
        for (const p of spec.ports) {
          if (!isObject(p)) continue;
          p.protocol ??= 'TCP';
          p.targetPort ??= p.port ?? null;
        }
      }
      o.spec = spec;
    },
    prepareCreate(o, ctx) {
      const spec = o.spec as JsonObject;
      if (spec.clusterIP !== 'None') spec.clusterIP ??= ctx.allocateIp();
      spec.clusterIPs ??= [spec.clusterIP ?? null];
      spec.ipFamilies ??= ['IPv4'];
      spec.ipFamilyPolicy ??= 'SingleStack';
      spec.internalTrafficPolicy ??= 'Cluster';
      o.status = { loadBalancer: {} };
    },
    validate(o, old) {
      const spec = isObject(o.spec) ? o.spec : {};
      const errs: FieldError[] = [];
      if (spec.type !== 'ExternalName' && (!Array.isArray(spec.ports) || spec.ports.length === 0) && spec.clusterIP !== 'None') errs.push(required('spec.ports'));
      if (old && isObject(old.spec) && old.spec.clusterIP !== undefined && spec.clusterIP !== undefined && spec.clusterIP !== old.spec.clusterIP) {
        errs.push({ field: 'spec.clusterIPs[0]', type: 'FieldValueInvalid', detail: `Invalid value: ${JSON.stringify(spec.clusterIP)}: may not change once set` });
      }
      return errs;
    },
  },
  '/persistentvolumeclaims': {
    defaults(o) {
      if (isObject(o.spec)) o.spec.volumeMode ??= 'Filesystem';
    },
    prepareCreate(o) {
      o.status = { phase: 'Pending' };
    },
    validate(o) {
      const spec = isObject(o.spec) ? o.spec : {};
      const errs: FieldError[] = [];
      if (!Array.isArray(spec.accessModes) || spec.accessModes.length === 0) errs.push(required('spec.accessModes'));
      const req = isObject(spec.resources) && isObject(spec.resources.requests) ? spec.resources.requests.storage : undefined;
      if (req === undefined) errs.push(required('spec.resources[storage]'));
      return errs;
    },
  },
  'apps/deployments': {
    defaults(o) {
      const spec = isObject(o.spec) ? o.spec : {};
      spec.replicas ??= 1;
      spec.strategy ??= { type: 'RollingUpdate' };
      if (isObject(spec.strategy) && (spec.strategy.type ?? 'RollingUpdate') === 'RollingUpdate') {
        spec.strategy.type = 'RollingUpdate';
        spec.strategy.rollingUpdate ??= { maxUnavailable: '25%', maxSurge: '25%' };
      }
      spec.revisionHistoryLimit ??= 10;
      spec.progressDeadlineSeconds ??= 600;
      if (isObject(spec.template) && isObject(spec.template.spec)) defaultPodSpec(spec.template.spec);
      o.spec = spec;
    },
    prepareCreate(o) {
      o.status = {};
    },
    validate(o, old) {
      const spec = isObject(o.spec) ? o.spec : {};
      const errs: FieldError[] = [];
      if (!isObject(spec.selector)) errs.push(required('spec.selector'));
      const tpl = isObject(spec.template) ? spec.template : {};
      const tplMeta = isObject(tpl.metadata) ? tpl.metadata : {};
      const labels = isObject(tplMeta.labels) ? tplMeta.labels : {};
      if (isObject(spec.selector)) {
        const ml = isObject(spec.selector.matchLabels) ? spec.selector.matchLabels : {};
        const mismatch = Object.entries(ml).some(([k, v]) => labels[k] !== v);
        if (Object.keys(ml).length === 0 && !Array.isArray(spec.selector.matchExpressions)) {
          errs.push({ field: 'spec.selector', type: 'FieldValueInvalid', detail: 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment' });
        } else if (mismatch) {
          const shown = Object.entries(labels).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(', ');
          errs.push({ field: 'spec.template.metadata.labels', type: 'FieldValueInvalid', detail: `Invalid value: map[string]string{${shown}}: \`selector\` does not match template \`labels\`` });
        }
      }
      if (typeof spec.replicas === 'number' && spec.replicas < 0) {
        errs.push({ field: 'spec.replicas', type: 'FieldValueInvalid', detail: `Invalid value: ${spec.replicas}: must be greater than or equal to 0` });
      }
      errs.push(...validatePodSpec(tpl.spec, 'spec.template.spec'));
      if (old && isObject(old.spec) && !jsonEqual(old.spec.selector, spec.selector)) {
        errs.push({ field: 'spec.selector', type: 'FieldValueInvalid', detail: 'Invalid value: v1.LabelSelector{…}: field is immutable' });
      }
      return errs;
    },
  },
  'apiextensions.k8s.io/customresourcedefinitions': {
    defaults(o) {
      const spec = isObject(o.spec) ? o.spec : {};
      const names = isObject(spec.names) ? spec.names : {};
      if (typeof names.kind === 'string') {
        names.singular ??= names.kind.toLowerCase();
        names.listKind ??= `${names.kind}List`;
      }
      spec.conversion ??= { strategy: 'None' };
      o.spec = spec;
    },
    prepareCreate(o) {
      o.status = {};
    },
    validate(o, old) {
      const spec = isObject(o.spec) ? o.spec : {};
      const names = isObject(spec.names) ? spec.names : {};
      const errs: FieldError[] = [];
      if (typeof spec.group !== 'string' || spec.group === '') errs.push(required('spec.group'));
      if (typeof names.plural !== 'string' || names.plural === '') errs.push(required('spec.names.plural'));
      if (typeof names.kind !== 'string' || names.kind === '') errs.push(required('spec.names.kind'));
      if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') {
        errs.push({ field: 'spec.scope', type: 'FieldValueNotSupported', detail: `Unsupported value: ${JSON.stringify(spec.scope ?? '')}: supported values: "Cluster", "Namespaced"` });
      }
      if (typeof spec.group === 'string' && typeof names.plural === 'string' && o.metadata.name !== `${names.plural}.${spec.group}`) {
        errs.push({ field: 'metadata.name', type: 'FieldValueInvalid', detail: `Invalid value: ${JSON.stringify(o.metadata.name)}: must be spec.names.plural+"."+spec.group` });
      }
      const versions = Array.isArray(spec.versions) ? spec.versions.filter(isObject) : [];
      if (versions.length === 0) errs.push(required('spec.versions'));
      else {
        if (versions.filter((v) => v.storage === true).length !== 1) {
          errs.push({ field: 'spec.versions', type: 'FieldValueInvalid', detail: `Invalid value: ${JSON.stringify('[]')}: must have exactly one version marked as storage version` });
        }
        versions.forEach((v, i) => {
          if (!isObject(v.schema) || !isObject(v.schema.openAPIV3Schema)) errs.push({ field: `spec.versions[${i}].schema.openAPIV3Schema`, type: 'FieldValueRequired', detail: 'Required value: schemas are required' });
        });
      }
      if (old && isObject(old.spec) && old.spec.group !== spec.group) {
        errs.push({ field: 'spec.group', type: 'FieldValueInvalid', detail: `Invalid value: ${JSON.stringify(spec.group)}: field is immutable` });
      }
      return errs;
    },
  },
};

export function strategyFor(group: string, plural: string): Strategy {
  return STRATEGIES[`${group}/${plural}`] ?? {};
}

export function nameRuleFor(group: string, plural: string): NameRule {
  if (group === '' && plural === 'namespaces') return 'label';
  if (group === '' && plural === 'services') return 'dns1035';
  return 'subdomain';
}
