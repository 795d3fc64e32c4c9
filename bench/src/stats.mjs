/** Small statistics and formatting helpers for the report. */

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function min(values) {
  return Math.min(...values.filter((x) => Number.isFinite(x)));
}

export function max(values) {
  return Math.max(...values.filter((x) => Number.isFinite(x)));
}

/** `median (min–max)` of `values`, each formatted with `format`. */
export function spread(values, format) {
  if (values.length === 0) return '–';
  if (values.length === 1) return format(values[0]);
  return `${format(median(values))} (${format(min(values))}–${format(max(values))})`;
}

/** Requests per second, e.g. `12,345`. */
export const rps = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
/** Milliseconds with two decimals. */
export const ms = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');
/** A ratio, e.g. `1.52×`. */
export const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
/** Operations per second in millions, e.g. `12.3M`. */
export const mops = (x) => (Number.isFinite(x) ? `${(x / 1e6).toFixed(1)}M` : '–');
/** Bytes in MB, e.g. `52.1 MB`. */
export const mb = (x) => (Number.isFinite(x) ? `${(x / 1024 / 1024).toFixed(1)} MB` : '–');
