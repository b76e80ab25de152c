import { formatGoTime } from './gotime.js';

// Date.now() has millisecond resolution; anchor the monotonic ns clock to it once so times written by
// this process carry nanoseconds the way restic's do.
const anchorNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

export function nowNs(): bigint {
  return anchorNs + process.hrtime.bigint();
}

/** The current time as restic writes it in snapshots and locks (Go RFC3339Nano, local zone). */
export function nowGoTime(): string {
  return formatGoTime(nowNs());
}
