/**
 * jest's global setup (jest.config.cjs): fixes the run's seed before any worker starts, so every
 * randomized test file of the run draws from the one printed LOCKSTEP_TEST_SEED, and the line is
 * printed once per run instead of once per test file.
 */
import { ensureTestSeed } from "./random";

export default function globalSetup(): void {
  ensureTestSeed();
}
