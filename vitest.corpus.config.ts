import { configDefaults, defineConfig } from 'vitest/config';
import base, { CORPUS_TESTS } from './vitest.config.ts';

/** `npm run test:corpus`: only the Istio corpus checks, with the settings of every other test. */
export default defineConfig({
  test: { ...base.test, include: CORPUS_TESTS, exclude: configDefaults.exclude },
});
