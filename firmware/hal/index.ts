// The hardware boundary in one import: interfaces only, no implementations.
export type { Flash, FlashResult } from './flash.ts';
export { flashOk, flashErrorNotErased, flashErrorWorn, flashErrorRange, flashErrorIo } from './flash.ts';
export type { Clock, Timers } from './clock.ts';
export type { Socket, SocketHandlers, Network } from './socket.ts';
export type { Log } from './log.ts';
export type { Random } from './random.ts';
