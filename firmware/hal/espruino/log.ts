// The HAL Log over Espruino's console: one line per message, the level as a prefix.
import type { Log } from '../log.ts';

export class EspruinoLog implements Log {
  info(message: string): void {
    console.log(message);
  }

  warn(message: string): void {
    console.log('WARN ' + message);
  }

  error(message: string): void {
    console.log('ERROR ' + message);
  }
}
