// A 10-field record from an electricity sub-meter: the benchmark's second stream and a template
// that uses every numeric kind (timestamp, fixed, int, uint, enum, bool).
import { defineTemplate } from '../template.ts';

export const powerMeterTemplate = defineTemplate({
  name: 'power-meter',
  id: 2,
  version: 1,
  description: 'One reading of an AC sub-meter.',
  fields: [
    { name: 'ts', type: 'timestamp', resolutionMs: 1000, description: 'Time of the reading.' },
    { name: 'voltage', type: 'fixed', resolution: 0.1, min: 0, max: 300, unit: 'V' },
    { name: 'current', type: 'fixed', resolution: 0.01, min: 0, max: 100, unit: 'A' },
    { name: 'power', type: 'int', min: -30000, max: 30000, unit: 'W', description: 'Active power; negative when exporting.' },
    { name: 'energy', type: 'uint', min: 0, max: 4294967295, unit: 'Wh', description: 'Energy counter since install.' },
    { name: 'frequency', type: 'fixed', resolution: 0.01, min: 45, max: 65, unit: 'Hz' },
    { name: 'pf', type: 'fixed', resolution: 0.01, min: -1, max: 1, description: 'Power factor.' },
    { name: 'temp', type: 'fixed', resolution: 0.1, min: -40, max: 125, unit: 'degC', description: 'Meter temperature.' },
    { name: 'state', type: 'enum', values: ['idle', 'running', 'overload', 'fault'] },
    { name: 'relay', type: 'bool', description: 'Output relay closed.' },
  ],
});
