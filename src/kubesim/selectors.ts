// Label and field selectors in the string syntax of `?labelSelector=` / `?fieldSelector=`, and the
// structured LabelSelector of Deployments.
import { badRequest } from './errors.js';
import { getPath, isObject } from './types.js';

type Op = 'eq' | 'neq' | 'in' | 'notin' | 'exists' | '!exists' | 'gt' | 'lt';

export interface Requirement {
  key: string;
  op: Op;
  values: string[];
}

export type Selector = Requirement[];

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function checkKey(key: string, whole: string): string {
  if (!KEY.test(key) || key.length > 316) throw badRequest(`unable to parse requirement: invalid label key "${key}" in "${whole}"`);
  return key;
}

function checkValue(v: string, whole: string): string {
  if (!VALUE.test(v) || v.length > 63) throw badRequest(`unable to parse requirement: invalid label value: "${v}" in "${whole}"`);
  return v;
}

export function parseLabelSelector(text: string | null | undefined): Selector {
  if (!text || text.trim() === '') return [];
  const reqs: Selector = [];
  for (const raw of splitTopLevel(text)) {
    const part = raw.trim();
    if (part === '') throw badRequest(`found '', expected: identifier in "${text}"`);
    let m: RegExpMatchArray | null;
    if ((m = /^(\S+?)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part))) {
      const values = m[3].split(',').map((v) => checkValue(v.trim(), text));
      reqs.push({ key: checkKey(m[1], text), op: m[2] as Op, values });
    } else if ((m = /^!\s*(\S+)$/.exec(part))) {
      reqs.push({ key: checkKey(m[1], text), op: '!exists', values: [] });
    } else if ((m = /^([^=!<>\s]+)\s*(==|=|!=|>|<)\s*(\S*)$/.exec(part))) {
      const op: Op = m[2] === '!=' ? 'neq' : m[2] === '>' ? 'gt' : m[2] === '<' ? 'lt' : 'eq';
      if ((op === 'gt' || op === 'lt') && !/^-?\d+$/.test(m[3])) throw badRequest(`unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer in "${text}"`);
      reqs.push({ key: checkKey(m[1], text), op, values: [checkValue(m[3], text)] });
    } else if (/^\S+$/.test(part)) {
      reqs.push({ key: checkKey(part, text), op: 'exists', values: [] });
    } else {
      throw badRequest(`unable to parse requirement: couldn't parse "${part}" in "${text}"`);
    }
  }
  return reqs;
}

function matchOne(r: Requirement, has: boolean, value: string | undefined): boolean {
  switch (r.op) {
    case 'eq':
      return has && value === r.values[0];
    case 'neq':
      return !has || value !== r.values[0];
    case 'in':
      return has && r.values.includes(value ?? '');
    case 'notin':
      return !has || !r.values.includes(value ?? '');
    case 'exists':
      return has;
    case '!exists':
      return !has;
    case 'gt':
      return has && /^-?\d+$/.test(value ?? '') && Number(value) > Number(r.values[0]);
    case 'lt':
      return has && /^-?\d+$/.test(value ?? '') && Number(value) < Number(r.values[0]);
  }
}

export function matchesLabels(sel: Selector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return sel.every((r) => matchOne(r, Object.hasOwn(l, r.key), l[r.key]));
}

/** The structured selector of Deployments/Services (`matchLabels` + `matchExpressions`). */
export function fromLabelSelectorObject(sel: unknown): Selector {
  const reqs: Selector = [];
  if (!isObject(sel)) return reqs;
  if (isObject(sel.matchLabels)) {
    for (const [key, v] of Object.entries(sel.matchLabels)) reqs.push({ key, op: 'eq', values: [String(v)] });
  }
  if (Array.isArray(sel.matchExpressions)) {
    for (const e of sel.matchExpressions) {
      if (!isObject(e) || typeof e.key !== 'string') continue;
      const values = Array.isArray(e.values) ? e.values.map(String) : [];
      const op: Op = e.operator === 'In' ? 'in' : e.operator === 'NotIn' ? 'notin' : e.operator === 'Exists' ? 'exists' : '!exists';
      reqs.push({ key: e.key, op, values });
    }
  }
  return reqs;
}

export interface FieldRequirement {
  field: string;
  negate: boolean;
  value: string;
}

/** Field selector terms are `a=b`, `a==b`, `a!=b`; `\,` `\=` `\\` escape in values. */
export function parseFieldSelector(text: string | null | undefined, allowed: readonly string[]): FieldRequirement[] {
  if (!text || text.trim() === '') return [];
  const terms: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\' && i + 1 < text.length) {
      cur += ch + text[++i];
    } else if (ch === ',') {
      terms.push(cur);
      cur = '';
    } else cur += ch;
  }
  terms.push(cur);
  const out: FieldRequirement[] = [];
  for (const term of terms) {
    const m = /^([^=!]+?)(==|=|!=)(.*)$/.exec(term.trim());
    if (!m) throw badRequest(`invalid selector: '${text}'; can't understand '${term}'`);
    const field = m[1].trim();
    if (!allowed.includes(field)) throw badRequest(`field label not supported: ${field}`);
    out.push({ field, negate: m[2] === '!=', value: m[3].replace(/\\(.)/g, '$1') });
  }
  return out;
}

export function matchesFields(reqs: readonly FieldRequirement[], obj: unknown): boolean {
  return reqs.every((r) => {
    const v = getPath(obj, r.field.split('.'));
    const s = v === undefined || v === null ? '' : String(v);
    return r.negate ? s !== r.value : s === r.value;
  });
}
