// Go's time.Time JSON form (RFC3339Nano) as restic writes node and snapshot times: the wall clock
// of the machine's local zone (TZ env, as Go's time.Local) at that instant.
import { readFileSync } from 'node:fs';

import { IntegrityError } from '../errors.js';

const NS_PER_SEC = 1_000_000_000n;
const SEC_PER_DAY = 86_400;

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1–12). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [era * 400 + yoe + (m <= 2 ? 1 : 0), m, d];
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y: number, m: number): number {
  return m === 2 ? (isLeap(y) ? 29 : 28) : [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]!;
}

interface Zone {
  /** Seconds east of UTC. */
  offset: number;
  isDst: boolean;
}

/** A loaded time zone, as Go's time.Location holds it. */
interface Location {
  zones: Zone[];
  /** Transition instants (Unix seconds), ascending, and the zone index each one starts. */
  when: number[];
  index: number[];
  /** POSIX TZ rule for instants after the last transition ("" = none). */
  extend: string;
  firstZone: number;
}

/** A zone period found by lookup: the offset in force for [start, end). */
interface Period {
  offset: number;
  start: number;
  end: number;
}

const ALPHA = -Infinity;
const OMEGA = Infinity;
const UTC: Location = { zones: [], when: [], index: [], extend: '', firstZone: 0 };

/** Parses a TZif file (RFC 8536) the way Go's LoadLocationFromTZData does; undefined if malformed. */
function parseTzif(data: Buffer): Location | undefined {
  if (data.length < 44 || data.toString('latin1', 0, 4) !== 'TZif') return undefined;
  const version = data[4]!;
  if (version !== 0 && (version < 0x32 || version > 0x34)) return undefined;
  let pos = 20;
  const counts = (): number[] | undefined => {
    if (pos + 24 > data.length) return undefined;
    const n = [0, 1, 2, 3, 4, 5].map((k) => data.readUInt32BE(pos + 4 * k));
    pos += 24;
    return n;
  };
  let n = counts();
  if (n === undefined) return undefined;
  let size = 4;
  if (version !== 0) {
    // v2+: skip the 32-bit block and the second header, read the 64-bit block.
    const [isut, isstd, leap, time, type, char] = n as [number, number, number, number, number, number];
    pos += time * 5 + type * 6 + char + leap * 8 + isstd + isut + 20;
    n = counts();
    if (n === undefined) return undefined;
    size = 8;
  }
  const [isut, isstd, leap, time, type, char] = n as [number, number, number, number, number, number];
  const txAt = pos;
  const idxAt = txAt + time * size;
  const zoneAt = idxAt + time;
  const charAt = zoneAt + type * 6;
  const end = charAt + char + leap * (size + 4) + isstd + isut;
  if (end > data.length || type === 0) return undefined;
  const zones: Zone[] = [];
  for (let i = 0; i < type; i++) {
    zones.push({ offset: data.readInt32BE(zoneAt + 6 * i), isDst: data[zoneAt + 6 * i + 4] !== 0 });
    if (data[zoneAt + 6 * i + 5]! >= char) return undefined;
  }
  const when: number[] = [];
  const index: number[] = [];
  for (let i = 0; i < time; i++) {
    when.push(size === 8 ? Number(data.readBigInt64BE(txAt + 8 * i)) : data.readInt32BE(txAt + 4 * i));
    const zi = data[idxAt + i]!;
    if (zi >= type) return undefined;
    index.push(zi);
  }
  if (when.length === 0) {
    // Fixed zones (Etc/GMT+3) have no transitions: one that covers all time.
    when.push(ALPHA);
    index.push(0);
  }
  const rest = data.toString('latin1', end);
  const extend = rest.length > 2 && rest.startsWith('\n') && rest.endsWith('\n') ? rest.slice(1, -1) : '';
  return { zones, when, index, extend, firstZone: firstZone(zones, index) };
}

/** The zone for instants before the first transition, chosen as Go does. */
function firstZone(zones: Zone[], index: number[]): number {
  if (!index.includes(0)) return 0;
  if (zones[index[0]!]!.isDst) {
    for (let zi = index[0]! - 1; zi >= 0; zi--) if (!zones[zi]!.isDst) return zi;
  }
  const std = zones.findIndex((z) => !z.isDst);
  return std < 0 ? 0 : std;
}

function loadZoneFile(path: string): Location | undefined {
  try {
    return parseTzif(readFileSync(path));
  } catch {
    return undefined;
  }
}

/** Go's time.Local: TZ unset = /etc/localtime, TZ="" or unloadable = UTC, absolute path or zoneinfo name. */
function loadLocal(tz: string | undefined): Location {
  if (tz === undefined) return loadZoneFile('/etc/localtime') ?? UTC;
  const name = tz.startsWith(':') ? tz.slice(1) : tz;
  if (name === '' || name === 'UTC') return UTC;
  if (name.startsWith('/')) return loadZoneFile(name) ?? UTC;
  for (const dir of ['/usr/share/zoneinfo/', '/usr/share/lib/zoneinfo/', '/usr/lib/locale/TZ/']) {
    const loc = loadZoneFile(dir + name);
    if (loc !== undefined) return loc;
  }
  return UTC;
}

let local: { tz: string | undefined; loc: Location; cache?: Period } | undefined;

/** The local zone; reloaded when TZ changes (Go reads it once, tests switch zones). */
function localZone(): NonNullable<typeof local> {
  if (local === undefined || local.tz !== process.env.TZ) local = { tz: process.env.TZ, loc: loadLocal(process.env.TZ) };
  return local;
}

/** Go's Location.lookup: the offset in force at `sec` and the period it holds for. */
function lookup(sec: number): Period {
  const lz = localZone();
  const c = lz.cache;
  if (c !== undefined && c.start <= sec && sec < c.end) return c;
  const p = lookupIn(lz.loc, sec);
  lz.cache = p;
  return p;
}

function lookupIn(loc: Location, sec: number): Period {
  if (loc.zones.length === 0) return { offset: 0, start: ALPHA, end: OMEGA };
  const { when, index, zones } = loc;
  if (sec < when[0]!) return { offset: zones[loc.firstZone]!.offset, start: ALPHA, end: when[0]! };
  let lo = 0;
  let hi = when.length;
  let end = OMEGA;
  while (hi - lo > 1) {
    const m = (lo + hi) >> 1;
    if (sec < when[m]!) {
      end = when[m]!;
      hi = m;
    } else lo = m;
  }
  const period = { offset: zones[index[lo]!]!.offset, start: when[lo]!, end };
  if (lo === when.length - 1 && loc.extend !== '') return tzset(loc.extend, period.start, sec) ?? period;
  return period;
}

interface Rule {
  kind: 'julian' | 'doy' | 'mwd';
  day: number;
  week: number;
  mon: number;
  /** Seconds after local midnight. */
  time: number;
}

/** A POSIX TZ string, e.g. "CET-1CEST,M3.5.0,M10.5.0/3"; offsets already negated (east = positive). */
interface PosixTz {
  stdOffset: number;
  dst?: { offset: number; start: Rule; end: Rule };
}

const posixCache = new Map<string, PosixTz | undefined>();

function parsePosixTz(spec: string): PosixTz | undefined {
  let s = spec;
  const name = (): boolean => {
    if (s.startsWith('<')) {
      const close = s.indexOf('>');
      if (close < 0) return false;
      s = s.slice(close + 1);
      return true;
    }
    const m = /^[^0-9,+-]*/.exec(s)![0];
    if (m.length < 3) return false;
    s = s.slice(m.length);
    return true;
  };
  const num = (max: number): number | undefined => {
    const m = /^\d+/.exec(s);
    if (m === null || Number(m[0]) > max) return undefined;
    s = s.slice(m[0].length);
    return Number(m[0]);
  };
  const offset = (): number | undefined => {
    let sign = 1;
    if (s.startsWith('+') || s.startsWith('-')) {
      if (s[0] === '-') sign = -1;
      s = s.slice(1);
    }
    const h = num(24 * 7);
    if (h === undefined) return undefined;
    let total = h * 3600;
    for (const unit of [60, 1]) {
      if (!s.startsWith(':')) break;
      s = s.slice(1);
      const v = num(59);
      if (v === undefined) return undefined;
      total += v * unit;
    }
    return sign * total;
  };
  const rule = (): Rule | undefined => {
    if (s.length < 2) return undefined;
    let r: Rule;
    if (s.startsWith('J')) {
      s = s.slice(1);
      const day = num(365);
      if (day === undefined || day < 1) return undefined;
      r = { kind: 'julian', day, week: 0, mon: 0, time: 0 };
    } else if (s.startsWith('M')) {
      s = s.slice(1);
      const mon = num(12);
      if (mon === undefined || mon < 1 || !s.startsWith('.')) return undefined;
      s = s.slice(1);
      const week = num(5);
      if (week === undefined || week < 1 || !s.startsWith('.')) return undefined;
      s = s.slice(1);
      const day = num(6);
      if (day === undefined) return undefined;
      r = { kind: 'mwd', day, week, mon, time: 0 };
    } else {
      const day = num(365);
      if (day === undefined) return undefined;
      r = { kind: 'doy', day, week: 0, mon: 0, time: 0 };
    }
    r.time = 2 * 3600;
    if (s.startsWith('/')) {
      s = s.slice(1);
      const t = offset();
      if (t === undefined) return undefined;
      r.time = t;
    }
    return r;
  };

  if (!name()) return undefined;
  const std = offset();
  if (std === undefined) return undefined;
  if (s === '' || s.startsWith(',')) return { stdOffset: -std };
  if (!name()) return undefined;
  let dstOffset = -std + 3600;
  if (s !== '' && !s.startsWith(',')) {
    const o = offset();
    if (o === undefined) return undefined;
    dstOffset = -o;
  }
  if (s === '') s = ',M3.2.0,M11.1.0';
  if (!s.startsWith(',') && !s.startsWith(';')) return undefined;
  s = s.slice(1);
  const start = rule();
  if (start === undefined || !s.startsWith(',')) return undefined;
  s = s.slice(1);
  const end = rule();
  if (end === undefined || s !== '') return undefined;
  return { stdOffset: -std, dst: { offset: dstOffset, start, end } };
}

const DAYS_BEFORE = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

/** Seconds from the start of `year` (UTC) at which `r` happens in a zone at offset `off`. */
function ruleTime(year: number, r: Rule, off: number): number {
  let d: number;
  if (r.kind === 'julian') d = r.day - 1 + (isLeap(year) && r.day >= 60 ? 1 : 0);
  else if (r.kind === 'doy') d = r.day;
  else {
    const firstDow = (((daysFromCivil(year, r.mon, 1) + 4) % 7) + 7) % 7;
    let dom = r.day - firstDow;
    if (dom < 0) dom += 7;
    for (let i = 1; i < r.week && dom + 7 < daysInMonth(year, r.mon); i++) dom += 7;
    d = dom + DAYS_BEFORE[r.mon - 1]! + (isLeap(year) && r.mon > 2 ? 1 : 0);
  }
  return d * SEC_PER_DAY + r.time - off;
}

/** Go's tzset: the period at `sec` under a POSIX TZ rule; periods are clipped to the UTC year. */
function tzset(spec: string, lastTx: number, sec: number): Period | undefined {
  let tz = posixCache.get(spec);
  if (!posixCache.has(spec)) {
    tz = parsePosixTz(spec);
    posixCache.set(spec, tz);
  }
  if (tz === undefined) return undefined;
  if (tz.dst === undefined) return { offset: tz.stdOffset, start: lastTx, end: OMEGA };
  const day = Math.floor(sec / SEC_PER_DAY);
  const [year] = civilFromDays(day);
  const yearStart = daysFromCivil(year, 1, 1) * SEC_PER_DAY;
  // Go adds the truncated (not floored) remainder: differs only before 1970.
  const ysec = (day * SEC_PER_DAY - yearStart) + (sec % SEC_PER_DAY);
  let startSec = ruleTime(year, tz.dst.start, tz.stdOffset);
  let endSec = ruleTime(year, tz.dst.end, tz.dst.offset);
  let stdOffset = tz.stdOffset;
  let dstOffset = tz.dst.offset;
  if (endSec < startSec) {
    // Southern hemisphere: "DST" covers the turn of the year, so swap the roles.
    [startSec, endSec] = [endSec, startSec];
    [stdOffset, dstOffset] = [dstOffset, stdOffset];
  }
  if (ysec < startSec) return { offset: stdOffset, start: yearStart, end: yearStart + startSec };
  if (ysec >= endSec) return { offset: stdOffset, start: yearStart + endSec, end: yearStart + 365 * SEC_PER_DAY };
  return { offset: dstOffset, start: yearStart + startSec, end: yearStart + endSec };
}

/** UTC offset in seconds of the local zone at `sec` (Unix seconds). */
function localOffset(sec: number): number {
  return lookup(sec).offset;
}

/** Unix seconds of a local wall clock (given as seconds), resolved as Go's time.Date does. */
function fromLocalWall(wall: number): number {
  const p = lookup(wall);
  if (p.offset === 0) return wall;
  const utc = wall - p.offset;
  return utc < p.start || utc >= p.end ? wall - lookup(utc).offset : utc;
}

function pad(v: number, width: number): string {
  return String(v).padStart(width, '0');
}

/** Go's time.RFC3339Nano of the instant in the local zone, years clamped to 0–9999 like restic's FixTime. */
export function formatGoTime(epochNs: bigint): string {
  let sec = epochNs / NS_PER_SEC;
  let nsec = epochNs % NS_PER_SEC;
  if (nsec < 0n) {
    nsec += NS_PER_SEC;
    sec -= 1n;
  }
  let s = Number(sec);
  let offset = localOffset(s);
  let local = s + offset;
  let days = Math.floor(local / SEC_PER_DAY);
  let [y, m, d] = civilFromDays(days);
  if (y < 0 || y > 9999) {
    // restic's FixTime: t.AddDate to year 0 or 9999 keeps month, day and clock (Feb 29 rolls over).
    const target = y < 0 ? 0 : 9999;
    let wallDays = daysFromCivil(target, m, 1) + d - 1;
    if (d > daysInMonth(target, m)) wallDays = daysFromCivil(target, m, daysInMonth(target, m)) + 1;
    s = fromLocalWall(wallDays * SEC_PER_DAY + (local - days * SEC_PER_DAY));
    offset = localOffset(s);
    local = s + offset;
    days = Math.floor(local / SEC_PER_DAY);
    [y, m, d] = civilFromDays(days);
  }
  const tod = local - days * SEC_PER_DAY;
  let out = `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}T${pad(Math.floor(tod / 3600), 2)}:${pad(Math.floor(tod / 60) % 60, 2)}:${pad(tod % 60, 2)}`;
  if (nsec !== 0n) out += '.' + pad(Number(nsec), 9).replace(/0+$/, '');
  if (offset === 0) return out + 'Z';
  // Go prints whole minutes of the offset, truncated toward zero.
  const minutes = Math.trunc(Math.abs(offset) / 60);
  return out + (offset < 0 ? '-' : '+') + pad(Math.floor(minutes / 60), 2) + ':' + pad(minutes % 60, 2);
}

/** The number in `n` decimal digits at `at`, or -1 if one is not a digit. */
function digitsAt(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (!(d >= 0 && d <= 9)) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * Unix seconds of `YYYY-MM-DDTHH:MM:SS[.digits](Z|±hh:mm)`, NaN if malformed or out of range.
 * Hand-written without allocations: trees carry three times per node.
 */
function rfc3339Seconds(s: string): number {
  if (s.length < 20 || s[4] !== '-' || s[7] !== '-' || s[10] !== 'T' || s[13] !== ':' || s[16] !== ':') return NaN;
  const y = digitsAt(s, 0, 4);
  const mo = digitsAt(s, 5, 2);
  const d = digitsAt(s, 8, 2);
  const h = digitsAt(s, 11, 2);
  const mi = digitsAt(s, 14, 2);
  const se = digitsAt(s, 17, 2);
  let i = 19;
  if (s[i] === '.') {
    const start = ++i;
    while (digitsAt(s, i, 1) >= 0) i++;
    if (i === start) return NaN;
  }
  let offset = 0;
  if (s[i] === '+' || s[i] === '-') {
    const oh = digitsAt(s, i + 1, 2);
    const om = digitsAt(s, i + 4, 2);
    if (i + 6 !== s.length || s[i + 3] !== ':' || oh < 0 || om < 0 || oh > 23 || om > 59) return NaN;
    offset = (s[i] === '-' ? -1 : 1) * (oh * 3600 + om * 60);
  } else if (s[i] !== 'Z' || i + 1 !== s.length) return NaN;
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59) {
    return NaN;
  }
  return daysFromCivil(y, mo, d) * SEC_PER_DAY + h * 3600 + mi * 60 + se - offset;
}

/** Throws IntegrityError unless `s` is a time parseGoTime accepts (cheaper than parsing it). */
export function checkGoTime(s: string): void {
  if (Number.isNaN(rfc3339Seconds(s))) throw new IntegrityError(`invalid time ${JSON.stringify(s)}`);
}

/** Parses Go RFC3339 (fraction optional, Z or ±hh:mm) to Unix nanoseconds. */
export function parseGoTime(s: string): bigint {
  const sec = rfc3339Seconds(s);
  if (Number.isNaN(sec)) throw new IntegrityError(`invalid time ${JSON.stringify(s)}`);
  let frac = '';
  if (s[19] === '.') {
    let end = 20;
    while (digitsAt(s, end, 1) >= 0) end++;
    // Go keeps nanoseconds and drops further digits.
    frac = s.slice(20, Math.min(end, 29));
  }
  return BigInt(sec) * NS_PER_SEC + BigInt(frac.padEnd(9, '0'));
}
