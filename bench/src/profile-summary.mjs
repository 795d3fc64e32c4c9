#!/usr/bin/env node
/**
 * Summarises a V8 `.cpuprofile` (from `pnpm bench -- --cpu-prof`, or `node --cpu-prof`):
 * where the busy time goes by component (Node's HTTP server, undici, the framework,
 * dashscope-token, GC), the functions with the most self time, and the inclusive time of
 * dashscope-token's own functions. For a flame graph, open the file in Chrome DevTools
 * (Performance → Load profile) or https://www.speedscope.app.
 *
 *   node src/profile-summary.mjs profiles/node-ours.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
});
const file = positionals[0];
if (!file) {
  console.error('usage: profile-summary.mjs <file.cpuprofile> [--top N]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const top = Number(values.top);

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Self time per node from samples × time deltas (µs).
const self = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}

function component(frame) {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)') return 'V8/native (program)';
  if (url.includes('/packages/core/dist/') || url.includes('@dashscope-token/core')) {
    return 'dashscope-token core';
  }
  if (url.includes('/packages/express/') || url.includes('/packages/koa/')) {
    return 'dashscope-token adapter';
  }
  if (url.includes('/undici/')) return 'undici';
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `npm: ${pkg[1]}`;
  if (url.startsWith('node:internal/http') || url.startsWith('node:_http') || url === 'node:http') {
    return 'node: http';
  }
  if (url.startsWith('node:internal/streams') || url.startsWith('node:stream'))
    return 'node: streams';
  if (url.startsWith('node:net') || url.startsWith('node:internal/stream_base')) return 'node: net';
  if (url.startsWith('node:')) return 'node: other';
  if (url === '') return `native: ${functionName || '(anonymous)'}`;
  return url;
}

const total = [...self.values()].reduce((a, b) => a + b, 0);
const idleIds = profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id);
const idle = idleIds.reduce((s, id) => s + (self.get(id) ?? 0), 0);
const busy = total - idle;

const byComponent = new Map();
const byFunction = new Map();
for (const [id, time] of self) {
  const frame = byId.get(id).callFrame;
  const comp = component(frame);
  byComponent.set(comp, (byComponent.get(comp) ?? 0) + time);
  const key = `${frame.functionName || '(anonymous)'}  ${frame.url.replace(/^.*\/(node_modules|packages)\//, '$1/')}:${frame.lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + time);
}

// Inclusive time of dashscope-token functions (each node counted once per sample stack).
const inclusive = new Map();
for (const [id, time] of self) {
  const seen = new Set();
  let cur = id;
  while (cur !== undefined) {
    const frame = byId.get(cur).callFrame;
    if (component(frame).startsWith('dashscope-token')) {
      const key = `${frame.functionName || '(anonymous)'}:${frame.lineNumber + 1}`;
      if (!seen.has(key)) {
        seen.add(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + time);
      }
    }
    cur = parent.get(cur);
  }
}

const pct = (t) => `${((100 * t) / busy).toFixed(1).padStart(5)}%`;
const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
console.log(
  `${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (percentages of busy time)\n`,
);
console.log('by component (self time):');
for (const [k, t] of sorted(byComponent)) {
  if (k !== 'idle' && t / busy >= 0.005) console.log(`  ${pct(t)}  ${k}`);
}
console.log(`\ntop ${top} functions (self time):`);
for (const [k, t] of sorted(byFunction).slice(0, top)) {
  if (!k.startsWith('(idle)')) console.log(`  ${pct(t)}  ${k}`);
}
console.log('\ndashscope-token functions (inclusive time):');
for (const [k, t] of sorted(inclusive).slice(0, top)) console.log(`  ${pct(t)}  ${k}`);
