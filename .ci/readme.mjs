#!/usr/bin/env node
// Runs the READMEs' commands the way a new user would, so that a README cannot promise a
// command that does not work. Node built-ins only (it runs before anything is installed).
//
//   node .ci/readme.mjs list                     every command found, and who runs it
//   node .ci/readme.mjs quickstart               the root README's two Quick start commands
//   node .ci/readme.mjs commands [--skip-slow] [--only TEXT]   every other command of every
//                                                README (--only: those whose place or text has TEXT)
//
// Run from the root of a fresh clone. The environment is the caller's: .ci/run gives it a
// PATH without pnpm and a HOME of its own. Each command runs as written, in the folder of its
// README (a `cd` in the README's text says otherwise). Commands that start a server are
// started, waited for (a `http://127.0.0.1:PORT` line), exercised with the same README's `curl`
// commands, then stopped with SIGINT, which must end them with exit code 0. A README command
// that no rule below knows how to run fails the run: add a rule, or fix the README.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = process.cwd();
const results = { passed: 0, failed: 0, skipped: 0 };

// ---------------------------------------------------------------------------------------------
// Extraction: ```sh / ```bash / ```shell blocks (one command a line, `\` continues a line,
// `# …` comments dropped) and inline `code` that starts like a command.
// ---------------------------------------------------------------------------------------------

const INLINE_COMMAND = /^(corepack|pnpm|npm|npx|node|curl|bun|deno|apt-get) /;

function readmes() {
  const files = execFileSync('git', ['ls-files', '*README.md', 'README.md'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  return [...new Set(files)].sort();
}

function stripComment(line) {
  // A `#` that starts a word and is outside quotes starts a comment.
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

/** @returns {{file: string, dir: string, line: number, command: string, inline: boolean, section: string}[]} */
function extract(file) {
  const text = readFileSync(path.join(root, file), 'utf8');
  const lines = text.split('\n');
  const found = [];
  let fence = null;
  let section = '';
  let pending = '';
  let pendingLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const fenceMatch = /^\s*```(\w*)/.exec(raw);
    if (fenceMatch) {
      fence = fence === null ? fenceMatch[1] || 'text' : null;
      continue;
    }
    if (fence === null) {
      if (/^#{1,6} /.test(raw)) section = raw.replace(/^#+ /, '').trim();
      for (const m of raw.matchAll(/`([^`]+)`/g)) {
        const code = m[1].trim();
        if (INLINE_COMMAND.test(code) && !/<[a-z-]+>|…/.test(code)) {
          found.push({ file, line: i + 1, command: code, inline: true, section });
        }
      }
      continue;
    }
    if (!['sh', 'bash', 'shell'].includes(fence)) continue;
    const line = stripComment(raw);
    if (!pending && line.trim() === '') continue;
    if (line.endsWith('\\')) {
      if (!pending) pendingLine = i + 1;
      pending += `${line.slice(0, -1).trimEnd()} `;
      continue;
    }
    const command = (pending + line.trim()).trim();
    found.push({ file, line: pending ? pendingLine : i + 1, command, inline: false, section });
    pending = '';
  }
  return found.map((f) => ({ ...f, dir: path.dirname(file) }));
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

function report(ok, what, detail = '') {
  if (ok === 'skip') results.skipped++;
  else if (ok) results.passed++;
  else results.failed++;
  const mark = ok === 'skip' ? 'SKIP' : ok ? 'ok  ' : 'FAIL';
  console.log(`${mark} ${what}${detail ? `\n       ${detail.replace(/\n/g, '\n       ')}` : ''}`);
}

/** Runs a command to its end; resolves {code, out}. */
function run(
  command,
  { cwd = root, timeoutMs = 15 * 60_000, env = process.env, echo = false } = {},
) {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const take = (chunk) => {
      out += chunk;
      if (echo) process.stdout.write(chunk);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), out });
    });
  });
}

/**
 * Starts a long-running command in its own process group (as a terminal would), resolves
 * once a line shows a local URL, or when it exits before that.
 */
function start(command, { cwd = root, env = process.env, readyMs = 240_000 } = {}) {
  const child = spawn('bash', ['-c', command], {
    cwd,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise((resolve) => {
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), signal }));
  });
  const ready = new Promise((resolve) => {
    const onData = (chunk) => {
      out += chunk;
      const m =
        /(?:running at|listening on|Listening on)\s+(https?:\/\/(?:127\.0\.0\.1|localhost):\d+)/i.exec(
          out,
        );
      if (m) resolve({ url: m[1] });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c) => (out += c));
    exited.then((e) => resolve({ exited: e }));
    setTimeout(() => resolve({ timeout: true }), readyMs).unref();
  });
  return {
    ready,
    exited,
    output: () => out,
    /** Ctrl-C: SIGINT to the whole group; resolves the exit code (SIGKILL after 20 s). */
    async interrupt() {
      try {
        process.kill(-child.pid, 'SIGINT');
      } catch {}
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {}
      }, 20_000);
      const e = await exited;
      clearTimeout(timer);
      return e;
    },
  };
}

function leaks(out) {
  // Any permanent key (the emulator's default one included): `sk-` and 20 or more characters.
  return /\bsk-[A-Za-z0-9]{20,}/.test(out);
}

/** A README's curl command against a running server: exit 0, an answer, and no key in it. */
async function curl(entry, env) {
  const r = await run(entry.command, { cwd: path.join(root, entry.dir), env, timeoutMs: 60_000 });
  const where = `${entry.file}:${entry.line} ${entry.command}`;
  if (r.code !== 0) return report(false, where, `exit ${r.code}: ${r.out.slice(0, 500)}`);
  if (leaks(r.out)) return report(false, where, 'the answer contains a permanent key');
  if (/"error"\s*:|"code"\s*:\s*"(?!200)/.test(r.out) && !/__emulator/.test(entry.command)) {
    return report(false, where, `an error answer: ${r.out.slice(0, 300)}`);
  }
  report(true, where, r.out.trim().split('\n')[0].slice(0, 120));
}

/** Starts a server command, runs the README's curl commands against it, stops it with Ctrl-C. */
async function serve(entry, { env, cwd, curls = [], check } = {}) {
  const where = `${entry.file}:${entry.line} ${entry.command}`;
  const started = performance.now();
  const server = start(entry.command, { cwd: cwd ?? path.join(root, entry.dir), env });
  const ready = await server.ready;
  if (!ready.url) {
    const detail = ready.timeout ? 'no URL line within 4 min' : `exited ${ready.exited.code}`;
    if (ready.timeout) await server.interrupt();
    return report(false, where, `${detail}\n${server.output().slice(-1500)}`);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  report(true, where, `${ready.url} after ${seconds} s`);
  try {
    if (check) await check(ready.url);
  } catch (error) {
    report(false, `${where}: ${error.message}`);
  }
  for (const c of curls) await curl(c, env);
  const before = server.output().length;
  const e = await server.interrupt();
  // Clean: exit 0, or ended by the SIGINT itself (npm re-raises it once its child has exited,
  // as a shell expects), and nothing that reads as an error after the Ctrl-C.
  const after = server.output().slice(before);
  const clean = (e.code === 0 || e.signal === 'SIGINT') && !/ERR_|Error|error:/i.test(after);
  const how = e.code === 0 ? 'exit 0' : `ended by ${e.signal ?? `exit ${e.code}`}`;
  report(clean, `${where}: Ctrl-C`, clean ? how : `${how}\n${after.slice(-800)}`);
  return ready.url;
}

// ---------------------------------------------------------------------------------------------
// The Quick start
// ---------------------------------------------------------------------------------------------

function quickStartCommands() {
  const entries = extract('README.md').filter((e) => e.section === 'Quick start' && !e.inline);
  if (entries.length !== 2) {
    throw new Error(`The Quick start should be two commands; found ${entries.length}.`);
  }
  return entries;
}

async function quickstart() {
  const [demo, test] = quickStartCommands();
  const env = { ...process.env };
  // biome-ignore lint/suspicious/noUndeclaredEnvVars: set by .ci/run, not a turbo task input.
  const cloneStarted = Number(process.env.CI_CLONE_STARTED_MS || 0);
  await serve(demo, {
    env,
    async check(url) {
      const page = await fetch(url);
      const html = await page.text();
      if (page.status !== 200 || !html.includes('<html')) throw new Error(`page: ${page.status}`);
      if (cloneStarted) {
        console.log(
          `       from git clone to the page answering: ${((Date.now() - cloneStarted) / 1000).toFixed(1)} s`,
        );
      }
      const config = await (await fetch(`${url}/config.json`)).json();
      const chat = await fetch(`${url}/dashscope/compatible-mode/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: config.model,
          messages: [{ role: 'user', content: 'Hello!' }],
        }),
      });
      const body = await chat.json();
      const reply = body?.choices?.[0]?.message?.content;
      if (chat.status !== 200 || typeof reply !== 'string' || reply === '') {
        throw new Error(
          `chat through the proxy: ${chat.status} ${JSON.stringify(body).slice(0, 200)}`,
        );
      }
      report(true, 'the page answers and a chat goes through the proxy', reply.slice(0, 80));
    },
  });
  console.log(`\n--- ${test.command}`);
  const r = await run(test.command, { env, echo: true, timeoutMs: 30 * 60_000 });
  report(r.code === 0, `README.md:${test.line} ${test.command}`, `exit ${r.code}`);
}

// ---------------------------------------------------------------------------------------------
// Every other command: rules
// ---------------------------------------------------------------------------------------------

let packed;
/** The publishable packages packed as a user would get them, installed into a fresh npm project. */
async function packedProject() {
  if (packed) return packed;
  const dir = mkdtempSync(path.join(tmpdir(), 'readme-pack-'));
  const tarballs = path.join(dir, 'tarballs');
  mkdirSync(tarballs);
  const r = await run(
    `corepack pnpm -r --filter "./packages/*" pack --pack-destination "${tarballs}"`,
  );
  if (r.code !== 0) throw new Error(`pnpm pack failed: ${r.out.slice(-800)}`);
  const files = readdirSync(tarballs).map((f) => path.join(tarballs, f));
  packed = { dir, files, byName: new Map() };
  for (const f of files) {
    const name = `@dashscope-token/${path
      .basename(f)
      .replace(/^dashscope-token-/, '')
      .replace(/-\d.*$/, '')}`;
    packed.byName.set(name, f);
  }
  return packed;
}

let manifests;
/** The package.json of every package under packages/, by name. */
function workspaceManifests() {
  if (manifests) return manifests;
  manifests = new Map();
  for (const dir of readdirSync(path.join(root, 'packages'))) {
    const file = path.join(root, 'packages', dir, 'package.json');
    try {
      const manifest = JSON.parse(readFileSync(file, 'utf8'));
      manifests.set(manifest.name, manifest);
    } catch {}
  }
  return manifests;
}

/** A fresh project folder that a command installs packages into. */
function freshProject(kind) {
  const dir = mkdtempSync(path.join(tmpdir(), `readme-${kind}-`));
  writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: `readme-${kind}`, version: '1.0.0', private: true, type: 'module' }),
  );
  return dir;
}

/**
 * `npm install @dashscope-token/x` (and `pnpm add`): the packages are not on the registry from
 * this clone, so the command runs with each of our names replaced by its packed tarball (their
 * other dependencies come from the registry); then both entry points of each load.
 */
async function installCommand(entry) {
  const where = `${entry.file}:${entry.line} ${entry.command}`;
  const p = await packedProject();
  const names = entry.command.match(/@dashscope-token\/[a-z-]+/g) ?? [];
  // A user's install of one of ours pulls the others it depends on from the registry: here,
  // their tarballs too (every @dashscope-token dependency, transitively).
  const withDeps = new Set();
  const add = (name) => {
    if (withDeps.has(name)) return;
    withDeps.add(name);
    const manifest = workspaceManifests().get(name);
    for (const dep of Object.keys(manifest?.dependencies ?? {})) {
      if (dep.startsWith('@dashscope-token/')) add(dep);
    }
  };
  for (const n of names) add(n);
  let command = entry.command;
  for (const n of names) {
    if (!p.byName.has(n)) return report(false, where, `${n} is not a package of this repository`);
    command = command.replace(n, [...withDeps].map((d) => p.byName.get(d)).join(' '));
  }
  const dir = freshProject('install');
  const r = await run(command, { cwd: dir, timeoutMs: 10 * 60_000 });
  if (r.code !== 0) return report(false, where, `exit ${r.code}: ${r.out.slice(-800)}`);
  for (const n of names) {
    const load = await run(
      `node -e "require('${n}')" && node --input-type=module -e "await import('${n}')"`,
      { cwd: dir },
    );
    if (load.code !== 0) return report(false, where, `${n} does not load: ${load.out.slice(-500)}`);
  }
  report(true, where, `installed from the packed tarballs; require() and import() load`);
  return dir;
}

let emulatorProject;
async function emulatorBin(entry, curls) {
  emulatorProject ??= await installCommand({
    file: '(setup)',
    line: 0,
    command: 'npm install @dashscope-token/emulator',
  });
  if (!emulatorProject) return;
  await serve(entry, { cwd: emulatorProject, curls });
}

/** `corepack pnpm changeset`, answered at its prompts through a pseudo-terminal. */
async function changesetCommand(entry, env) {
  const where = `${entry.file}:${entry.line} ${entry.command}`;
  const before = new Set(readdirSync(path.join(root, '.changeset')));
  const script = `
import os, pty, sys, time, select
cmd = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.execvp('bash', ['bash', '-c', cmd])
out = b''
def wait_for(text, timeout=120):
    global out
    end = time.time() + timeout
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return False
            if not chunk:
                return False
            out += chunk
            if text.encode() in out:
                return True
    return False
steps = [('Which packages', ' \\r'), ('major', '\\r'), ('minor', '\\r'), ('Summary', 'README check\\r'), ('desired changeset', '\\r')]
for text, keys in steps:
    if not wait_for(text):
        sys.stdout.write(out.decode(errors='replace')[-1500:])
        sys.exit(2)
    out = b''
    time.sleep(0.3)
    os.write(fd, keys.encode())
wait_for('never-printed', 20)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
`;
  const r = await run(`python3 -c "$SCRIPT" '${entry.command}'`, {
    env: { ...env, SCRIPT: script },
    timeoutMs: 180_000,
  });
  const added = readdirSync(path.join(root, '.changeset')).filter((f) => !before.has(f));
  const ok =
    r.code === 0 &&
    added.length === 1 &&
    readFileSync(path.join(root, '.changeset', added[0]), 'utf8').includes('README check');
  report(
    ok,
    where,
    ok ? `wrote .changeset/${added[0]}` : `exit ${r.code}, added ${added}: ${r.out.slice(-800)}`,
  );
  for (const f of added) execFileSync('rm', ['-f', path.join(root, '.changeset', f)]);
}

/** Runs to its end, in the README's folder; exit 0. */
async function plain(entry, env, { after } = {}) {
  const where = `${entry.file}:${entry.line} ${entry.command}`;
  const r = await run(entry.command, {
    cwd: path.join(root, entry.dir),
    env,
    timeoutMs: 30 * 60_000,
  });
  if (r.code !== 0) return report(false, where, `exit ${r.code}: ${r.out.slice(-1500)}`);
  if (leaks(r.out)) return report(false, where, 'output contains a permanent key');
  const problem = after ? await after(r) : undefined;
  report(!problem, where, problem ?? r.out.trim().split('\n').at(-1)?.slice(0, 140));
}

/**
 * The README shows this command's output in a ```text block after "Its output": each shown line
 * must be printed (numbers, and the key after `st-`, may differ).
 */
function matchesShownOutput(file, out) {
  const text = readFileSync(path.join(root, file), 'utf8');
  const block = /Its output:\s*```text\n([\s\S]*?)```/.exec(text);
  if (!block) return 'no "Its output" block in the README';
  for (const shown of block[1].split('\n').filter(Boolean)) {
    const pattern = shown
      .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
      .replace(/st-\S*/g, 'st-\\S+')
      .replace(/\d+/g, '\\d+');
    if (!new RegExp(pattern).test(out)) return `the README shows "${shown}"; not printed`;
  }
  return undefined;
}

function gitClean() {
  return execFileSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter(
      (l) =>
        l &&
        !/^(\?\?| M) .*(RESULTS\.quick\.md|RESULTS\.md|profiles\/|\.baseline\/|test-results\/)/.test(
          l,
        ),
    );
}

/**
 * Who runs each kind of command. `run` gets (entry, env, all entries of the same README).
 * Order matters: the first rule whose pattern matches takes the command.
 */
const RULES = [
  {
    name: 'quick start',
    match: (e) => e.file === 'README.md' && e.section === 'Quick start',
    by: 'quickstart',
  },
  // The same two commands, repeated elsewhere: the Quick start runs them.
  {
    name: 'quick start',
    match: (e) =>
      e.command === 'corepack pnpm install && corepack pnpm demo' ||
      e.command === 'corepack pnpm demo' ||
      e.command === 'corepack pnpm test',
    by: 'quickstart',
  },
  {
    name: 'example-tokens',
    match: (e) => e.command === 'corepack pnpm --filter example-tokens start',
    run: (e, env) => plain(e, env, { after: (r) => matchesShownOutput(e.file, r.out) }),
  },
  {
    name: 'readme list',
    match: (e) => e.command === 'node .ci/readme.mjs list',
    run: (e, env) => plain(e, env),
  },
  { name: 'curl', match: (e) => /^curl /.test(e.command), by: 'the server of its README' },
  {
    name: 'server',
    match: (e) =>
      /(^| )(corepack pnpm|pnpm)( --filter [\w@/-]+)? start$/.test(e.command) ||
      /^corepack pnpm demo$/.test(e.command),
    run: (e, env, same) => serve(e, { env, curls: same.filter((c) => /^curl /.test(c.command)) }),
  },
  {
    name: 'emulator bin',
    match: (e) => /^npx (dashscope-emulator|@dashscope-token\/emulator)\b/.test(e.command),
    run: (e, _env, same) =>
      emulatorBin(
        e,
        same.filter((c) => /^curl .*__emulator/.test(c.command)),
      ),
  },
  {
    name: 'install',
    match: (e) =>
      /^(npm install|npm i|pnpm add|corepack pnpm add) .*@dashscope-token\//.test(e.command),
    run: (e) => installCommand(e),
  },
  {
    name: 'changeset',
    match: (e) => /^corepack pnpm changeset$/.test(e.command),
    run: changesetCommand,
  },
  {
    name: 'format',
    match: (e) => /^corepack pnpm format$/.test(e.command),
    run: (e, env) =>
      plain(e, env, {
        after: () =>
          gitClean().length ? `format changed files: ${gitClean().join(', ')}` : undefined,
      }),
  },
  {
    name: 'version-packages',
    match: (e) => /^corepack pnpm version-packages$/.test(e.command),
    run: (e, env) =>
      plain(e, env, {
        after: () => {
          const changed = gitClean();
          execFileSync('git', ['checkout', '--', '.'], { cwd: root });
          execFileSync('git', ['clean', '-fdq', '--', '.changeset', 'packages'], { cwd: root });
          return changed.some((l) => /CHANGELOG\.md/.test(l))
            ? undefined
            : 'no CHANGELOG.md written';
        },
      }),
  },
  {
    name: 'release (dry run)',
    match: (e) => /^corepack pnpm release$/.test(e.command),
    // Publishing is the one thing CI must not do: npm's dry-run mode, set in the environment.
    run: (e, env) => plain(e, { ...env, npm_config_dry_run: 'true' }),
  },
  // A short profiling run (one 8 s contender), which the next command of its README reads.
  {
    name: 'bench profile',
    match: (e) => / --only node-ours --phases throughput --rounds 1 .*--cpu-prof$/.test(e.command),
    run: (e, env) => plain(e, env),
  },
  {
    name: 'bench',
    match: (e) => /^corepack pnpm bench\b/.test(e.command),
    slow: true,
    run: (e, env) => plain(e, env),
  },
  {
    name: 'bench soak',
    match: (e) => /^corepack pnpm --filter @dashscope-token\/bench soak$/.test(e.command),
    slow: true,
    run: (e, env) => plain(e, env),
  },
  {
    name: 'profile summary',
    match: (e) => /^node src\/profile-summary\.mjs/.test(e.command),
    run: (e, env) => plain(e, env),
  },
  {
    name: 'A/B baseline',
    match: (e) => /^mkdir -p \.baseline/.test(e.command),
    run: (e, env) => plain(e, env),
  },
  {
    name: 'apt-get',
    match: (e) => /^apt-get install chromium$/.test(e.command),
    run: (e, env) => plain({ ...e, command: `${e.command} -y -qq` }, env),
  },
  {
    name: 'workspace command',
    match: (e) =>
      /^corepack pnpm (install|build|lint|typecheck|--filter [\w@/-]+ (test|start))$/.test(
        e.command,
      ),
    run: (e, env) => plain(e, env),
  },
];

function ruleFor(entry) {
  return RULES.find((r) => r.match(entry));
}

async function commands({ skipSlow, only }) {
  const env = { ...process.env };
  const all = readmes().flatMap(extract);
  const seen = new Set();
  const unknown = all.filter((e) => !ruleFor(e));
  for (const e of unknown)
    report(
      false,
      `${e.file}:${e.line} ${e.command}`,
      'no rule runs this README command (.ci/readme.mjs)',
    );
  for (const file of readmes()) {
    const same = all.filter((e) => e.file === file);
    for (const e of same) {
      const rule = ruleFor(e);
      if (!rule?.run) continue;
      if (only !== undefined && !`${e.file}:${e.line} ${e.command}`.includes(only)) continue;
      // A slow command (the benchmarks) runs once, wherever its README stands.
      const key = rule.slow ? e.command : `${e.dir}\0${e.command}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (rule.slow && skipSlow) {
        report('skip', `${e.file}:${e.line} ${e.command}`, '--skip-slow');
        continue;
      }
      console.log(`\n--- ${e.file}:${e.line} ${e.command}`);
      await rule.run(e, env, same);
    }
  }
}

function list() {
  for (const e of readmes().flatMap(extract)) {
    const rule = ruleFor(e);
    console.log(
      `${(rule ? (rule.by ?? rule.name) : 'NO RULE').padEnd(26)} ${e.file}:${e.line}  ${e.command}`,
    );
  }
}

const [mode, ...args] = process.argv.slice(2);
try {
  if (mode === 'list') list();
  else if (mode === 'quickstart') await quickstart();
  else if (mode === 'commands')
    await commands({
      skipSlow: args.includes('--skip-slow'),
      only: args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined,
    });
  else
    throw new Error(
      'usage: node .ci/readme.mjs list | quickstart | commands [--skip-slow] [--only TEXT]',
    );
} catch (error) {
  report(false, String(error?.stack ?? error));
}
if (mode !== 'list') {
  console.log(
    `\nreadme ${mode}: ${results.passed} passed, ${results.failed} failed, ${results.skipped} skipped`,
  );
}
process.exitCode = results.failed > 0 ? 1 : 0;
