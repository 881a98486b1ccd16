// The reference telemetry record: one environmental reading (the reference stream).
import { defineTemplate } from '../template.ts';

export const telemetryTemplate = defineTemplate({
  name: 'telemetry',
  id: 1,
  version: 1,
  description: 'One environmental reading: time, temperature, relative humidity, battery voltage.',
  fields: [
    { name: 'ts', type: 'timestamp', resolutionMs: 1000, description: 'Time of the reading (Unix epoch ms, whole seconds).' },
    { name: 'temp', type: 'fixed', resolution: 0.1, min: -40, max: 125, unit: 'degC', description: 'Temperature.' },
    { name: 'hum', type: 'uint', min: 0, max: 100, unit: '%', description: 'Relative humidity.' },
    { name: 'batt', type: 'uint', min: 0, max: 6000, unit: 'mV', description: 'Battery voltage.' },
  ],
});
