import { describe, expect, it } from 'vitest';
import { DashScopeError, REGION_HOSTS, type Region, resolveBaseUrl } from '../src/index.js';

const NO_ENV = {};

function failure(fn: () => unknown): DashScopeError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DashScopeError);
    return error as DashScopeError;
  }
  throw new Error('expected a DashScopeError');
}

describe('resolveBaseUrl', () => {
  it('maps every region to its shared host', () => {
    const expected: Record<Region, string> = {
      'cn-beijing': 'https://dashscope.aliyuncs.com',
      'ap-southeast-1': 'https://dashscope-intl.aliyuncs.com',
      'us-east-1': 'https://dashscope-us.aliyuncs.com',
      'cn-hongkong': 'https://cn-hongkong.dashscope.aliyuncs.com',
    };
    expect(Object.keys(REGION_HOSTS).sort()).toEqual(Object.keys(expected).sort());
    for (const [region, url] of Object.entries(expected)) {
      expect(resolveBaseUrl({ region: region as Region }, NO_ENV)).toBe(url);
      expect(resolveBaseUrl({}, { DASHSCOPE_REGION: region })).toBe(url);
    }
  });

  it('defaults to the cn-beijing host', () => {
    expect(resolveBaseUrl({}, NO_ENV)).toBe('https://dashscope.aliyuncs.com');
    expect(resolveBaseUrl(undefined, { DASHSCOPE_BASE_URL: '', DASHSCOPE_REGION: ' ' })).toBe(
      'https://dashscope.aliyuncs.com',
    );
  });

  it('builds the workspace-dedicated host, cn-beijing unless a region is given', () => {
    expect(resolveBaseUrl({ workspaceId: 'ws-abc123' }, NO_ENV)).toBe(
      'https://ws-abc123.cn-beijing.maas.aliyuncs.com',
    );
    expect(resolveBaseUrl({ workspaceId: 'ws-abc123', region: 'ap-southeast-1' }, NO_ENV)).toBe(
      'https://ws-abc123.ap-southeast-1.maas.aliyuncs.com',
    );
    expect(resolveBaseUrl({ workspaceId: 'llm-9x' }, { DASHSCOPE_REGION: 'us-east-1' })).toBe(
      'https://llm-9x.us-east-1.maas.aliyuncs.com',
    );
  });

  it('refuses a malformed workspace ID', () => {
    for (const workspaceId of [
      'WS-Upper',
      'a.b',
      '-lead',
      'trail-',
      'has space',
      '',
      'x'.repeat(64),
    ]) {
      const error = failure(() => resolveBaseUrl({ workspaceId }, NO_ENV));
      expect(error.code).toBe('InvalidParameter');
      expect(error.status).toBe(400);
      expect(error.message).toMatch(/workspaceId/);
    }
  });

  it('uses an explicit baseUrl, normalising trailing slashes and API roots but keeping a prefix', () => {
    expect(resolveBaseUrl({ baseUrl: 'https://dashscope-intl.aliyuncs.com/' }, NO_ENV)).toBe(
      'https://dashscope-intl.aliyuncs.com',
    );
    expect(resolveBaseUrl({ baseUrl: 'http://127.0.0.1:8080' }, NO_ENV)).toBe(
      'http://127.0.0.1:8080',
    );
    expect(resolveBaseUrl({ baseUrl: 'https://dashscope.aliyuncs.com/api/v1/' }, NO_ENV)).toBe(
      'https://dashscope.aliyuncs.com',
    );
    expect(resolveBaseUrl({ baseUrl: 'https://x.example/compatible-mode/v1' }, NO_ENV)).toBe(
      'https://x.example',
    );
    expect(resolveBaseUrl({ baseUrl: 'https://GW.Example.com/dashscope//' }, NO_ENV)).toBe(
      'https://gw.example.com/dashscope',
    );
    expect(resolveBaseUrl({ baseUrl: 'https://gw.example.com/team/api/v1' }, NO_ENV)).toBe(
      'https://gw.example.com/team',
    );
  });

  it('reads DASHSCOPE_BASE_URL, then the SDK variable DASHSCOPE_HTTP_BASE_URL', () => {
    expect(resolveBaseUrl({}, { DASHSCOPE_BASE_URL: 'http://localhost:9000/' })).toBe(
      'http://localhost:9000',
    );
    expect(
      resolveBaseUrl({}, { DASHSCOPE_HTTP_BASE_URL: 'https://dashscope-intl.aliyuncs.com/api/v1' }),
    ).toBe('https://dashscope-intl.aliyuncs.com');
    expect(
      resolveBaseUrl(
        {},
        { DASHSCOPE_BASE_URL: 'http://a.example', DASHSCOPE_HTTP_BASE_URL: 'http://b.example' },
      ),
    ).toBe('http://a.example');
  });

  it('lets explicit options win over the environment, and baseUrl over workspaceId/region', () => {
    const env = {
      DASHSCOPE_BASE_URL: 'http://env.example',
      DASHSCOPE_REGION: 'us-east-1',
    };
    expect(resolveBaseUrl({}, env)).toBe('http://env.example');
    expect(resolveBaseUrl({ region: 'cn-hongkong' }, env)).toBe(
      'https://cn-hongkong.dashscope.aliyuncs.com',
    );
    expect(resolveBaseUrl({ workspaceId: 'ws1' }, env)).toBe(
      'https://ws1.us-east-1.maas.aliyuncs.com',
    );
    expect(
      resolveBaseUrl(
        { baseUrl: 'https://opt.example', region: 'cn-hongkong', workspaceId: 'ws1' },
        env,
      ),
    ).toBe('https://opt.example');
    expect(resolveBaseUrl({}, { DASHSCOPE_REGION: 'us-east-1' })).toBe(
      'https://dashscope-us.aliyuncs.com',
    );
  });

  it('names the valid regions when the region is unknown', () => {
    const fromOption = failure(() => resolveBaseUrl({ region: 'eu-central-1' as Region }, NO_ENV));
    expect(fromOption.code).toBe('InvalidParameter');
    expect(fromOption.status).toBe(400);
    expect(fromOption.retryable).toBe(false);
    for (const region of Object.keys(REGION_HOSTS)) expect(fromOption.message).toContain(region);
    expect(fromOption.message).toContain('eu-central-1');

    const fromEnv = failure(() => resolveBaseUrl({}, { DASHSCOPE_REGION: 'mars-1' }));
    expect(fromEnv.code).toBe('InvalidParameter');
    expect(fromEnv.message).toContain('DASHSCOPE_REGION');
    expect(fromEnv.message).toContain('cn-beijing');
  });

  it('refuses malformed base URLs with a clear message', () => {
    const cases: [string, RegExp][] = [
      ['dashscope.aliyuncs.com', /absolute URL/],
      ['/relative/path', /absolute URL/],
      ['ftp://dashscope.aliyuncs.com', /https: or http:/],
      ['https://dashscope.aliyuncs.com/?x=1', /query/],
      ['https://dashscope.aliyuncs.com/#frag', /fragment/],
      ['https://dashscope.aliyuncs.com?', /query/],
      ['', /absolute http\(s\) URL/],
    ];
    for (const [baseUrl, message] of cases) {
      const error = failure(() => resolveBaseUrl({ baseUrl }, NO_ENV));
      expect(error.code).toBe('InvalidParameter');
      expect(error.message).toMatch(message);
    }
    const fromEnv = failure(() => resolveBaseUrl({}, { DASHSCOPE_BASE_URL: 'not a url' }));
    expect(fromEnv.message).toContain('DASHSCOPE_BASE_URL');
  });

  it('never echoes credentials embedded in a base URL', () => {
    const error = failure(() =>
      resolveBaseUrl(
        { baseUrl: 'https://alice:sk-secretpassword123@dashscope.aliyuncs.com' },
        NO_ENV,
      ),
    );
    expect(error.code).toBe('InvalidParameter');
    expect(error.message).toMatch(/credentials/);
    expect(error.message).not.toContain('secretpassword');
    expect(error.message).not.toContain('alice');
  });
});
