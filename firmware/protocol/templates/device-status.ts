// The device's sync status [WIRE-26], replicated to the cloud as device-owned state (issue 5):
// what a fleet operator needs to see whether a device keeps up.
import { defineTemplate } from '../template.ts';

export const deviceStatusTemplate = defineTemplate({
  name: 'device-status',
  id: 3,
  version: 1,
  description: 'Sync status of one device, as of its last change.',
  fields: [
    { name: 'ts', type: 'timestamp', resolutionMs: 1000, description: 'When this status was taken.' },
    { name: 'connected', type: 'bool' },
    { name: 'lastSyncTs', type: 'timestamp', resolutionMs: 1000, description: 'End of the last sync session (0 if none yet).' },
    { name: 'lastSyncOutcome', type: 'enum', values: ['never', 'ok', 'failed', 'timeout', 'refused'] },
    { name: 'cacheDepth', type: 'uint', min: 0, max: 65535, unit: 'events', description: 'Events waiting in the cache.' },
    { name: 'cacheBytes', type: 'uint', min: 0, max: 1048576, unit: 'bytes' },
    { name: 'oldestAgeSec', type: 'uint', min: 0, max: 4294967295, unit: 's', description: 'Age of the oldest cached event.' },
    { name: 'drops', type: 'uint', min: 0, max: 4294967295, unit: 'events', description: 'Events dropped since boot.' },
    { name: 'duplicates', type: 'uint', min: 0, max: 4294967295, description: 'Duplicate deliveries recognised since boot.' },
    { name: 'conflicts', type: 'uint', min: 0, max: 4294967295, description: 'State conflicts resolved since boot.' },
    { name: 'bootEpoch', type: 'uint', min: 0, max: 4294967295 },
    { name: 'uptimeSec', type: 'uint', min: 0, max: 4294967295, unit: 's' },
  ],
});
