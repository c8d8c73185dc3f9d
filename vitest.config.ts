import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    environment: 'node',
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start servers and child processes; forks isolate them, and the CI box has 2 cores.
    pool: 'forks',
    maxWorkers: 2,
    watch: false,
    retry: 0,
  },
});
