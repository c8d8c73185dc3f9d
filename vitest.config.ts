import { configDefaults, defineConfig } from 'vitest/config';

/**
 * The checks against the Istio corpus, kept beside the repository (../shared/istio-corpus), which
 * a user's clone does not have: `npm run test:corpus` runs them (vitest.corpus.config.ts), and
 * .ci/run does when the corpus is there.
 */
export const CORPUS_TESTS = ['test/**/corpus.test.ts'];

export default defineConfig({
  test: {
    environment: 'node',
    include: ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...CORPUS_TESTS],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start servers and child processes; forks isolate them, and the CI box has 2 cores.
    pool: 'forks',
    maxWorkers: 2,
    watch: false,
    retry: 0,
  },
});
