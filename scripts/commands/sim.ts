// `tandem sim --seeds N`: runs the seeded fleet simulation (test/sim/) over N seeds, a few at a
// time, prints progress and a summary (runs, faults by kind, events, lost, duplicated, diverged),
// and merges the figures into bench/results.json under `sim`. Every failing seed is printed with
// the command that replays it; the exit code is 1 when any run broke an invariant that is not a
// known open issue (test/sim/known-issues.ts).
import { mergeResults, printTable, resultsPath } from '../../bench/results.ts';
import { faultKinds, replayCommand, type FaultKind, type SimOptions } from '../../test/sim/fleet-sim.ts';
import { knownIssues } from '../../test/sim/known-issues.ts';
import { runSweep } from '../../test/sim/sweep.ts';
import { parseOptions, parseWholeNumber, runCommand, UsageError } from '../cli.ts';

export const summary = 'Run the seeded fleet simulation (faults, invariants) over N seeds';

const usage = `Usage: tandem sim [--seeds N] [--seed S] [--concurrency C] [--faults K1,K2] [--every N] [--save | --no-save]

Runs N seeds (default 100) from seed S (default 1), C at a time (default 4). Each run starts the
cloud stub and 2-3 device cores over real TCP behind fault proxies, injects faults drawn from its
seed, heals, waits for the fleet to converge and checks the invariants (test/sim/README.md).

  --faults K1,K2     only these fault kinds (${faultKinds.join(', ')})
  --cloud-process    slower mode: the cloud stub runs as a child process, and cloud-kill faults
                     kill -9 it mid-sync; a new one starts on the same data directory
  --sandbox          slowest mode: the real firmware bundle in the Espruino sandbox (one device,
                     about 6 s of faults per seed; activity default 6000 ms)
  --event-flash      the durable event cache on every device (flush delay drawn per device), and
                     backlog-reboot faults: thousands of events queued offline, then a reset;
                     saved under "simEventFlash"
  --activity-ms MS   how long faults and workload run per seed (default 700)
  --converge-ms MS   how long the healed fleet may take to converge (default 8000)
  --every N          progress line every N runs (default: about 20 lines in all)
  --save / --no-save merge the summary into bench/results.json under "sim"
                     (default: save when N >= 50, so replaying one seed leaves the figures alone)

Replay one seed with: npm run sim -- --seed S --seeds 1`;

export function run(args: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseOptions('sim', args, {
      help: { type: 'boolean' }, seeds: { type: 'string' }, seed: { type: 'string' }, concurrency: { type: 'string' },
      faults: { type: 'string' }, every: { type: 'string' }, 'activity-ms': { type: 'string' }, 'converge-ms': { type: 'string' },
      save: { type: 'boolean' }, 'no-save': { type: 'boolean' }, 'cloud-process': { type: 'boolean' }, sandbox: { type: 'boolean' },
      'event-flash': { type: 'boolean' },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const seeds = parseWholeNumber('sim', 'seeds', values.seeds, 100);
    const firstSeed = parseWholeNumber('sim', 'seed', values.seed, 1);
    const concurrency = parseWholeNumber('sim', 'concurrency', values.concurrency, 4);
    if (seeds < 1) throw new UsageError('tandem sim: --seeds must be at least 1.');
    if (concurrency < 1 || concurrency > 32) throw new UsageError('tandem sim: --concurrency must be 1 to 32.');
    const every = parseWholeNumber('sim', 'every', values.every, Math.max(1, Math.round(seeds / 20)));
    const sim: SimOptions = {};
    if (values.faults !== undefined) {
      const kinds = values.faults.split(',').map((kind) => kind.trim()).filter((kind) => kind !== '');
      for (const kind of kinds) if (!(faultKinds as readonly string[]).includes(kind)) throw new UsageError(`tandem sim: unknown fault kind '${kind}'. Known: ${faultKinds.join(', ')}.`);
      sim.kinds = kinds as FaultKind[];
    }
    if (values['cloud-process']) sim.cloudProcess = true;
    if (values.sandbox) sim.sandbox = true;
    if (values['event-flash']) sim.eventFlash = true;
    if (sim.eventFlash === true && sim.sandbox === true) throw new UsageError('tandem sim: --event-flash runs device cores; it does not combine with --sandbox.');
    if (values['activity-ms'] !== undefined) sim.activityMs = parseWholeNumber('sim', 'activity-ms', values['activity-ms'], 700);
    if (values['converge-ms'] !== undefined) sim.convergeMs = parseWholeNumber('sim', 'converge-ms', values['converge-ms'], 8000);
    const save = values['no-save'] ? false : values.save ? true : seeds >= 50;
    if (values['no-save'] && values.save) throw new UsageError('tandem sim: --save and --no-save contradict each other.');

    console.log(`sim: ${seeds} seed(s) from ${firstSeed}, ${concurrency} at a time (Ctrl-C or SIGTERM: finish the runs under way, then summarise)`);
    let stopping = false;
    const stop = (): void => {
      if (stopping) process.exit(130);
      stopping = true;
      console.log('sim: stopping after the runs under way ...');
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    const result = await runSweep({
      seeds, firstSeed, concurrency, sim, shouldStop: () => stopping,
      onRun: (run, done, sum) => {
        const unknown = run.violations.filter((v) => !(v.code in knownIssues));
        for (const violation of unknown) {
          console.log(`sim: seed ${run.seed} FAILED [${violation.code}] ${violation.message}`);
          console.log(`sim: replay: ${replayCommand(run.seed, sim)}`);
        }
        if (seeds === 1) {
          for (const violation of run.violations.filter((v) => v.code in knownIssues)) console.log(`sim: seed ${run.seed} known issue [${violation.code}] ${violation.message}`);
          console.log(`sim: seed ${run.seed}: ${run.devices} devices, ${run.boots} boots, faults ${JSON.stringify(run.faults)}, ${run.durationMs} ms`);
        }
        if (done % every === 0 || done === seeds) {
          const rate = done / Math.max(sum.seconds, 0.001);
          console.log(`sim: ${done}/${seeds} runs, ${sum.seconds.toFixed(0)} s (${rate.toFixed(2)} runs/s), ${sum.events} events, lost ${sum.lost}, duplicated ${sum.duplicated}, diverged ${sum.diverged}, failures ${sum.failures.length}, known issues ${Object.entries(sum.violations).filter(([code]) => code in knownIssues).reduce((n, [, c]) => n + c, 0)}`);
        }
      },
    });

    printTable('sim: faults injected', ['kind', 'count'], Object.entries(result.faults).sort((a, b) => b[1] - a[1]).map(([kind, n]) => [kind, n]));
    printTable('sim: outcome', ['figure', 'value'], [
      ['runs', result.runs],
      ['seeds', `${firstSeed}..${firstSeed + result.runs - 1}${result.runs < seeds ? ` (stopped early, ${seeds} asked)` : ''}`],
      ['converged', result.converged],
      ['events accepted', result.events],
      ['delivered exactly once', result.delivered - result.duplicated],
      ['lost (acknowledged or held, not delivered)', result.lost],
      ['lost to power cuts (unacknowledged RAM cache)', result.lostPowerCut],
      ['dropped by overflow (reported)', result.droppedOverflow],
      ['delivered after a reboot from the flash tier', result.deliveredAfterReboot],
      ['stuck on a device that never converged', result.stuck],
      ['duplicated', result.duplicated],
      ['corrupted', result.corrupted],
      ['diverged keys', result.diverged],
      ['cloud-to-device messages', result.messages],
      ['RPC calls', result.rpcCalls],
      ['peak cache bytes / MQTT in flight / cloud sessions', `${result.peaks.cacheBytes} / ${result.peaks.inFlight} / ${result.peaks.cloudSessions}`],
      ['seconds', result.seconds.toFixed(1)],
    ]);
    const codes = Object.entries(result.violations).sort((a, b) => b[1] - a[1]);
    if (codes.length > 0) {
      printTable('sim: violations by code', ['code', 'count', 'known', 'first seeds'], codes.map(([code, n]) => [code, n, code in knownIssues ? 'yes' : 'NO', (result.seedsByCode[code] ?? []).join(' ')]));
    }
    if (save) {
      mergeResults(sim.eventFlash === true ? 'simEventFlash' : 'sim', {
        seedsAsked: seeds,
        runs: result.runs, firstSeed, events: result.events, delivered: result.delivered, lost: result.lost, lostPowerCut: result.lostPowerCut,
        droppedOverflow: result.droppedOverflow, deliveredAfterReboot: result.deliveredAfterReboot, duplicated: result.duplicated, corrupted: result.corrupted, diverged: result.diverged,
        stuck: result.stuck, converged: result.converged, faults: result.faults, violations: result.violations, seedsByCode: result.seedsByCode,
        failures: result.failures.length, seconds: Math.round(result.seconds),
      });
      console.log(`sim: figures merged into ${resultsPath} under "${sim.eventFlash === true ? 'simEventFlash' : 'sim'}"`);
    }
    if (result.failures.length > 0) {
      console.log(`sim: FAILED: ${result.failures.length} violation(s) in seeds ${[...new Set(result.failures.map((f) => f.seed))].slice(0, 20).join(' ')}`);
      return 1;
    }
    console.log(`sim: PASSED ${result.runs} runs${codes.length > 0 ? ' (known open issues counted above)' : ''}`);
    return 0;
  });
}
