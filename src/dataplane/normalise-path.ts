/** The data plane's use of the shared normaliser (AP-9); the implementation lives in util/ so `explain` runs the same code. */
export { normalisePath, type PathNormalizationMode } from '../util/normalise-path.ts';
