import { describe, expect, it } from 'vitest';
import { isValidEasName, parseWorkbenchTarget } from '../src/index.js';

describe('EAS names', () => {
  it('accepts the names EAS gives services, instances and workers', () => {
    expect(isValidEasName('service', 'my_llm_2')).toBe(true);
    expect(isValidEasName('instance', 'my-llm-2-7b56869574-44nq9')).toBe(true);
    expect(isValidEasName('worker', 'worker0')).toBe(true);
  });

  it('refuses separators, encodings, case, whitespace and over-long names', () => {
    for (const bad of ['', 'a/b', '..', '%2e', 'A', ' a', 'a b', 'a\n', '1abc', 'x'.repeat(65)]) {
      expect(isValidEasName('service', bad)).toBe(false);
    }
    for (const bad of ['-a', 'a-', 'a/b', 'a_b', 'a'.repeat(254), 'a?b']) {
      expect(isValidEasName('instance', bad)).toBe(false);
    }
    expect(isValidEasName('worker', 'a.b')).toBe(false);
    expect(isValidEasName('worker', 'a'.repeat(64))).toBe(false);
  });

  it('parses a Workbench request body, or refuses it with 400 InvalidParameter', () => {
    expect(parseWorkbenchTarget({ service: 's_1', instance: 'i-1' })).toEqual({
      service: 's_1',
      instance: 'i-1',
    });
    expect(parseWorkbenchTarget({ service: 's', instance: 'i', worker: 'worker0' })).toEqual({
      service: 's',
      instance: 'i',
      worker: 'worker0',
    });
    for (const bad of [
      null,
      [],
      'x',
      {},
      { service: 's' },
      { service: 's', instance: 'i', extra: 1 },
      { service: 's', instance: 'i', worker: 3 },
    ]) {
      expect(() => parseWorkbenchTarget(bad)).toThrow(
        expect.objectContaining({ code: 'InvalidParameter', status: 400 }),
      );
    }
  });
});
