// The state template moved to the protocol (device and cloud share it); kept as a re-export.
export * from '../protocol/state-template.ts';
