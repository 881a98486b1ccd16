// Every template the product knows, one file each in this folder. The firmware imports the ones
// it emits; the cloud registers them all so it can decode any of them by hash [WIRE-23].
import { createTemplateRegistry, type Template, type TemplateRegistry } from '../template.ts';
import { deviceStatusTemplate } from './device-status.ts';
import { eventsDroppedTemplate } from './events-dropped.ts';
import { powerMeterTemplate } from './power-meter.ts';
import { telemetryTemplate } from './telemetry.ts';

export { deviceStatusTemplate, eventsDroppedTemplate, powerMeterTemplate, telemetryTemplate };

/** All templates, by id. */
export function allTemplates(): Template[] {
  return [telemetryTemplate, powerMeterTemplate, deviceStatusTemplate, eventsDroppedTemplate];
}

/** A registry of all templates (the cloud's view). */
export function createDefaultRegistry(): TemplateRegistry {
  return createTemplateRegistry(allTemplates());
}
