// The device's console, injected so that tests can capture what the firmware says.

export interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}
