// The example application's state (firmware/main.ts): what the demo device reports and what the
// cloud may set. Key ids are positions: append new keys, never reorder.
import { boolField, intField, stringField, stateOwnerCloud, stateOwnerDevice, type StateTemplate } from '../state-template.ts';

export const demoStateTemplate: StateTemplate = {
  fields: [
    // Local keys ('_'): the device's own bookkeeping, never replicated [SYNC-9].
    intField('_bootEpoch', stateOwnerDevice),
    intField('_messageSeq', stateOwnerDevice),
    // Device-owned, reported to the cloud.
    intField('batteryMv', stateOwnerDevice),
    stringField('firmware', stateOwnerDevice, 16),
    intField('bootCount', stateOwnerDevice),
    // Cloud-owned (desired), applied by the device.
    boolField('led', stateOwnerCloud),
    intField('reportIntervalSec', stateOwnerCloud),
  ],
};
