/**
 * Where Model Studio is: regions, their hosts, and the base URL a call goes to.
 */
import { processEnv } from './env.js';
import { DashScopeError } from './errors.js';
import type { EndpointOptions, Region } from './types.js';

/** The shared Model Studio host of each region. */
export const REGION_HOSTS: Readonly<Record<Region, string>> = Object.freeze({
  'cn-beijing': 'dashscope.aliyuncs.com',
  'ap-southeast-1': 'dashscope-intl.aliyuncs.com',
  'us-east-1': 'dashscope-us.aliyuncs.com',
  'cn-hongkong': 'cn-hongkong.dashscope.aliyuncs.com',
});

/** The region used when neither options nor the environment name one. */
export const DEFAULT_REGION: Region = 'cn-beijing';

const REGION_NAMES = Object.keys(REGION_HOSTS) as Region[];

/** A workspace ID must be one DNS label: lowercase letters, digits and inner hyphens. */
const WORKSPACE_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Trailing API roots that users paste along with the host (the SDKs' `DASHSCOPE_HTTP_BASE_URL`
 * is `https://dashscope.aliyuncs.com/api/v1`; OpenAI clients use `.../compatible-mode/v1`).
 * They are removed so that the base URL is the root the API paths are appended to.
 */
const API_ROOT_SUFFIX = /\/(?:api\/v1|compatible-mode\/v1)$/i;

/** Environment variables read by {@link resolveBaseUrl}. */
export interface EndpointEnv {
  DASHSCOPE_BASE_URL?: string | undefined;
  DASHSCOPE_HTTP_BASE_URL?: string | undefined;
  DASHSCOPE_REGION?: string | undefined;
}

/**
 * Resolves the base URL (scheme, host and optional path prefix, no trailing slash) that
 * Model Studio API paths such as `/api/v1/tokens` are appended to.
 *
 * Precedence, first match wins:
 * 1. `opts.baseUrl`
 * 2. `opts.workspaceId` → `https://{workspaceId}.{region}.maas.aliyuncs.com`, region from
 *    `opts.region`, else `DASHSCOPE_REGION`, else `cn-beijing`
 * 3. `opts.region` → that region's shared host
 * 4. `DASHSCOPE_BASE_URL`, else `DASHSCOPE_HTTP_BASE_URL` (the official SDKs' variable)
 * 5. `DASHSCOPE_REGION` → that region's shared host
 * 6. `https://dashscope.aliyuncs.com` (cn-beijing)
 *
 * A base URL must be an absolute `http:` or `https:` URL without credentials, query or fragment.
 * It is normalised: trailing slashes are removed, and so is a trailing `/api/v1` or
 * `/compatible-mode/v1` (an API root, not a prefix); any other path is kept as a prefix
 * (e.g. a gateway mounted at `https://gw.example.com/dashscope`).
 *
 * Empty environment variables count as unset.
 *
 * @param opts where to go; see {@link EndpointOptions}
 * @param env the environment to read
 * @default env process.env (none on runtimes without `process`)
 * @throws DashScopeError `InvalidParameter` for a malformed URL, an unknown region or a malformed
 *   workspace ID.
 */
export function resolveBaseUrl(
  opts: EndpointOptions = {},
  env: EndpointEnv = processEnv(),
): string {
  if (opts.baseUrl !== undefined) return normalizeBaseUrl(opts.baseUrl, 'baseUrl');
  if (opts.workspaceId !== undefined) {
    const region =
      opts.region !== undefined
        ? checkRegion(opts.region, 'region')
        : envValue(env.DASHSCOPE_REGION) !== undefined
          ? checkRegion(env.DASHSCOPE_REGION, 'DASHSCOPE_REGION')
          : DEFAULT_REGION;
    return `https://${checkWorkspaceId(opts.workspaceId)}.${region}.maas.aliyuncs.com`;
  }
  if (opts.region !== undefined)
    return `https://${REGION_HOSTS[checkRegion(opts.region, 'region')]}`;
  const envBase = envValue(env.DASHSCOPE_BASE_URL);
  if (envBase !== undefined) return normalizeBaseUrl(envBase, 'DASHSCOPE_BASE_URL');
  const sdkBase = envValue(env.DASHSCOPE_HTTP_BASE_URL);
  if (sdkBase !== undefined) return normalizeBaseUrl(sdkBase, 'DASHSCOPE_HTTP_BASE_URL');
  const envRegion = envValue(env.DASHSCOPE_REGION);
  if (envRegion !== undefined) {
    return `https://${REGION_HOSTS[checkRegion(envRegion, 'DASHSCOPE_REGION')]}`;
  }
  return `https://${REGION_HOSTS[DEFAULT_REGION]}`;
}

/** Whether `value` is one of the four regions. */
export function isRegion(value: unknown): value is Region {
  return typeof value === 'string' && Object.hasOwn(REGION_HOSTS, value);
}

function envValue(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function invalid(message: string): DashScopeError {
  return new DashScopeError({ code: 'InvalidParameter', status: 400, retryable: false, message });
}

/** Short, printable rendering of a user-supplied value for an error message. */
function show(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  const clipped = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return JSON.stringify(clipped);
}

function checkRegion(value: unknown, source: string): Region {
  if (isRegion(value)) return value;
  throw invalid(
    `Unknown ${source} ${show(value)}: expected one of ${REGION_NAMES.join(', ')}. ` +
      'For another host, set baseUrl (or DASHSCOPE_BASE_URL).',
  );
}

function checkWorkspaceId(value: unknown): string {
  if (typeof value === 'string' && WORKSPACE_ID.test(value)) return value;
  throw invalid(
    `Invalid workspaceId ${show(value)}: expected lowercase letters, digits and hyphens ` +
      '(one DNS label, at most 63 characters), as shown in the Model Studio console.',
  );
}

function normalizeBaseUrl(value: unknown, source: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw invalid(
      `Invalid ${source}: expected an absolute http(s) URL such as "https://dashscope-intl.aliyuncs.com".`,
    );
  }
  const raw = value.trim();
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(
      `Invalid ${source} ${raw.includes('@') ? '(not shown)' : show(raw)}: not an absolute URL; ` +
        'expected e.g. "https://dashscope-intl.aliyuncs.com".',
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw invalid(
      `Invalid ${source} (not shown): it must not contain credentials (user:password@).`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalid(`Invalid ${source} ${show(raw)}: the scheme must be https: or http:.`);
  }
  if (raw.includes('?') || raw.includes('#')) {
    throw invalid(
      `Invalid ${source} ${show(raw)}: it must not contain a query (?) or a fragment (#).`,
    );
  }
  let path = url.pathname.replace(/\/+$/, '');
  path = path.replace(API_ROOT_SUFFIX, '');
  return `${url.protocol}//${url.host}${path}`;
}
