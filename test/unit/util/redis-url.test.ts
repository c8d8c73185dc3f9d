import { describe, expect, it } from 'vitest';
import { redactRedisUrl, redisUrlProblem } from '../../../src/util/redis-url.ts';

describe('redis URLs', () => {
  it('redacts the password and nothing else', () => {
    expect(redactRedisUrl('redis://sluice:hunter2@10.0.0.5:6380/2')).toBe(
      'redis://sluice:***@10.0.0.5:6380/2',
    );
    expect(redactRedisUrl('rediss://:hunter2@r')).toBe('rediss://:***@r');
    expect(redactRedisUrl('redis://r:6379')).toBe('redis://r:6379');
    // Unparsable: hidden whole, since where the password sits is unknown.
    expect(redactRedisUrl('redis://:hunter2@r:99999')).toBe('***');
  });

  it('never echoes the URL in a problem', () => {
    expect(redisUrlProblem('redis://:hunter2@r:6379/x')).not.toContain('hunter2');
    expect(redisUrlProblem('redis://r')).toBeNull();
  });

  it('refuses an upper-case scheme, which ioredis would not read as TLS', () => {
    expect(redisUrlProblem('REDISS://:hunter2@r:6380')).toContain('lower case');
    expect(redisUrlProblem('Redis://r')).toContain('lower case');
    expect(redisUrlProblem('rediss://r:6380')).toBeNull();
  });
});
