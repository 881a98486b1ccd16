// The benchmark's and tests' record streams, generated from a seeded RNG so every run sees the
// same bytes: the reference telemetry stream and a 10-field power-meter stream.

import { seededRandom } from '../../hal-mocks/seeded-random.ts';

export { seededRandom };

export interface TelemetryRecord {
  ts: number;
  temp: number;
  hum: number;
  batt: number;
  [key: string]: number;
}

/** 2025-11-27 00:00:00 UTC, the first reading of every generated stream. */
export const streamStartMs = 1764201600000;

/**
 * The reference stream: one reading a minute for a week (10,080 readings). Timestamps at
 * 1 s, 60 s apart, 5% of readings jittered by 1 or 2 s either way; temperature at 0.1 degC on a
 * random walk of 0.1 or 0.2 degC steps; humidity in whole % moving by 1 in 30% of readings;
 * battery in mV draining by 1 mV in 2% of readings, with +-1..3 mV of noise in 1% of them.
 */
export function referenceTelemetryStream(seed = 1, count = 7 * 24 * 60): TelemetryRecord[] {
  const random = seededRandom(seed);
  const records: TelemetryRecord[] = [];
  let tempTenths = 215;
  let hum = 45;
  let battLevel = 3950;
  for (let i = 0; i < count; i++) {
    let seconds = i * 60;
    if (random() < 0.05) {
      const jitter = 1 + Math.floor(random() * 2);
      seconds += random() < 0.5 ? -jitter : jitter;
    }
    if (i > 0) {
      const step = 1 + Math.floor(random() * 2);
      // Reflect at 15 and 30 degC so a week's walk stays indoors.
      let sign = random() < 0.5 ? -1 : 1;
      if (tempTenths - step < 150) sign = 1;
      if (tempTenths + step > 300) sign = -1;
      tempTenths += sign * step;
      if (random() < 0.3) {
        let move = random() < 0.5 ? -1 : 1;
        if (hum + move < 20 || hum + move > 80) move = -move;
        hum += move;
      }
      if (random() < 0.02) battLevel -= 1;
    }
    let batt = battLevel;
    if (random() < 0.01) {
      const noise = 1 + Math.floor(random() * 3);
      batt += random() < 0.5 ? -noise : noise;
    }
    records.push({ ts: streamStartMs + seconds * 1000, temp: tempTenths / 10, hum, batt });
  }
  return records;
}

export interface PowerMeterRecord {
  ts: number;
  voltage: number;
  current: number;
  power: number;
  energy: number;
  frequency: number;
  pf: number;
  temp: number;
  state: string;
  relay: boolean;
  [key: string]: number | string | boolean;
}

/**
 * A sub-meter read every 10 s: mains voltage and frequency wandering around nominal, a load that
 * switches between a few levels, power and power factor following it, an energy counter, a slowly
 * warming meter, a state and a relay that rarely change.
 */
export function powerMeterStream(seed = 2, count = 10080): PowerMeterRecord[] {
  const random = seededRandom(seed);
  const records: PowerMeterRecord[] = [];
  let voltageTenths = 2300;
  let frequencyHundredths = 5000;
  let loadHundredths = 450;
  let energy = 123456;
  let energyFraction = 0;
  let tempTenths = 310;
  let state = 'running';
  let relay = true;
  for (let i = 0; i < count; i++) {
    let seconds = i * 10;
    if (random() < 0.02) seconds += random() < 0.5 ? -1 : 1;
    voltageTenths += Math.floor(random() * 5) - 2;
    voltageTenths = Math.min(2450, Math.max(2150, voltageTenths));
    frequencyHundredths += Math.floor(random() * 3) - 1;
    frequencyHundredths = Math.min(5050, Math.max(4950, frequencyHundredths));
    if (random() < 0.03) loadHundredths = [0, 120, 450, 900, 1500][Math.floor(random() * 5)];
    if (random() < 0.005) relay = !relay;
    const currentHundredths = relay ? Math.max(0, loadHundredths + Math.floor(random() * 7) - 3) : 0;
    state = !relay ? 'idle' : currentHundredths > 1400 ? 'overload' : 'running';
    const pfHundredths = currentHundredths === 0 ? 100 : 92 + Math.floor(random() * 5);
    const power = Math.round((voltageTenths / 10) * (currentHundredths / 100) * (pfHundredths / 100));
    energyFraction += (power * 10) / 3600;
    while (energyFraction >= 1) {
      energy += 1;
      energyFraction -= 1;
    }
    if (random() < 0.05) tempTenths += random() < 0.5 ? -1 : 1;
    records.push({
      ts: streamStartMs + seconds * 1000,
      voltage: voltageTenths / 10,
      current: currentHundredths / 100,
      power,
      energy,
      frequency: frequencyHundredths / 100,
      pf: pfHundredths / 100,
      temp: tempTenths / 10,
      state,
      relay,
    });
  }
  return records;
}
