// [WIRE-27] The event a device emits when its cache dropped events (issue 4): loss is never silent.
import { defineTemplate } from '../template.ts';

export const eventsDroppedTemplate = defineTemplate({
  name: 'events-dropped',
  id: 4,
  version: 1,
  description: 'Events the device cache dropped since the previous such report.',
  fields: [
    { name: 'ts', type: 'timestamp', resolutionMs: 1000, description: 'When the report was made.' },
    { name: 'dropped', type: 'uint', min: 1, max: 4294967295, unit: 'events' },
    { name: 'firstSeq', type: 'uint', min: 0, max: 4294967295, description: 'Sequence of the first dropped event.' },
    { name: 'policy', type: 'enum', values: ['dropOldest', 'rejectNewest'] },
  ],
});
