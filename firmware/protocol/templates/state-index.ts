// Every state template the product knows. A device announces its state template's hash in HELLO;
// the cloud decodes and encodes state values only with the template of that hash [SYNC-7].
import type { StateTemplate } from '../state-template.ts';
import { demoStateTemplate } from './demo-state.ts';

export { demoStateTemplate };

export function allStateTemplates(): StateTemplate[] {
  return [demoStateTemplate];
}
