// Number formats of restic 0.14's progress and summary output (internal/ui/backup).

/** Sizes as restic's backup output prints them: "512 B", "1.500 KiB" (a unit once strictly above it). */
export function formatBytes(n: number): string {
  const units: [number, string][] = [
    [2 ** 40, 'TiB'],
    [2 ** 30, 'GiB'],
    [2 ** 20, 'MiB'],
    [2 ** 10, 'KiB'],
  ];
  for (const [size, unit] of units) if (n > size) return `${(n / size).toFixed(3)} ${unit}`;
  return `${n} B`;
}

/** "m:ss", or "h:mm:ss" from one hour on. */
export function formatSeconds(total: number): string {
  const sec = Math.max(0, Math.floor(total));
  const hours = Math.floor(sec / 3600);
  const min = Math.floor((sec % 3600) / 60);
  const s = String(sec % 60).padStart(2, '0');
  return hours > 0 ? `${hours}:${String(min).padStart(2, '0')}:${s}` : `${min}:${s}`;
}

/** Go's "%3.2f%%", capped at 100; empty without a denominator. */
export function formatPercent(numerator: number, denominator: number): string {
  if (denominator === 0) return '';
  return `${Math.min(100, (100 * numerator) / denominator).toFixed(2)}%`;
}

/** Go's fmt "%-5s": pads on the right to at least five characters. */
export function padRight(s: string, width: number): string {
  return s.length >= width ? s : s + ' '.repeat(width - s.length);
}

/** Go's fmt "%5d". */
export function padLeft(n: number, width: number): string {
  return String(n).padStart(width);
}

/** JSON as Go's encoding/json writes it: "<", ">", "&", U+2028 and U+2029 escaped. */
export function goJSON(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
