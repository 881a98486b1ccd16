// Runs many seeds of the fleet simulation a few at a time and adds up what happened: the summary
// `npm run sim` prints and the CI sweep asserts on.
import { emptyTally, replayCommand, runSimulation, type SimOptions, type SimRunResult, type Tally, type Violation } from './fleet-sim.ts';
import { knownIssues } from './known-issues.ts';

export interface SweepSummary extends Tally {
  runs: number;
  firstSeed: number;
  faults: Record<string, number>;
  rpcCalls: number;
  converged: number;
  /** Violations by code, and the first seeds that showed each code. */
  violations: Record<string, number>;
  seedsByCode: Record<string, number[]>;
  /** Violations whose code is not a known issue: each one fails the sweep. */
  failures: { seed: number; violation: Violation; replay: string }[];
  peaks: { cacheBytes: number; inFlight: number; cloudSessions: number };
  seconds: number;
}

export interface SweepOptions {
  seeds: number;
  firstSeed: number;
  concurrency: number;
  sim?: SimOptions;
  /** Checked before each new seed: true stops the sweep early (the summary covers the runs done). */
  shouldStop?: () => boolean;
  /** Called after every run (progress lines). */
  onRun?: (result: SimRunResult, done: number, summary: SweepSummary) => void;
}

export function emptySummary(firstSeed: number): SweepSummary {
  return {
    ...emptyTally(), runs: 0, firstSeed, faults: {}, rpcCalls: 0, converged: 0, violations: {}, seedsByCode: {}, failures: [],
    peaks: { cacheBytes: 0, inFlight: 0, cloudSessions: 0 }, seconds: 0,
  };
}

export function addRun(summary: SweepSummary, result: SimRunResult, options: SimOptions = {}): void {
  summary.runs++;
  for (const [kind, n] of Object.entries(result.faults)) summary.faults[kind] = (summary.faults[kind] ?? 0) + n;
  for (const key of Object.keys(emptyTally()) as (keyof Tally)[]) summary[key] += result[key];
  summary.rpcCalls += result.rpcCalls;
  if (result.converged) summary.converged++;
  summary.peaks.cacheBytes = Math.max(summary.peaks.cacheBytes, result.peaks.cacheBytes);
  summary.peaks.inFlight = Math.max(summary.peaks.inFlight, result.peaks.inFlight);
  summary.peaks.cloudSessions = Math.max(summary.peaks.cloudSessions, result.peaks.cloudSessions);
  const codes = new Set<string>();
  for (const violation of result.violations) {
    summary.violations[violation.code] = (summary.violations[violation.code] ?? 0) + 1;
    codes.add(violation.code);
    if (!(violation.code in knownIssues)) summary.failures.push({ seed: result.seed, violation, replay: replayCommand(result.seed, options) });
  }
  for (const code of codes) {
    const seeds = (summary.seedsByCode[code] ??= []);
    if (seeds.length < 10) seeds.push(result.seed);
  }
}

export async function runSweep(options: SweepOptions): Promise<SweepSummary> {
  const started = performance.now();
  const summary = emptySummary(options.firstSeed);
  let next = options.firstSeed;
  const end = options.firstSeed + options.seeds;
  const worker = async (): Promise<void> => {
    while (next < end && !(options.shouldStop?.() ?? false)) {
      const seed = next++;
      const result = options.sim?.sandbox === true
        ? await (await import('./sandbox-sim.ts')).runSandboxSimulation(seed, { activityMs: options.sim.activityMs, convergeMs: options.sim.convergeMs })
        : await runSimulation(seed, options.sim);
      addRun(summary, result, options.sim);
      summary.seconds = (performance.now() - started) / 1000;
      options.onRun?.(result, summary.runs, summary);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
