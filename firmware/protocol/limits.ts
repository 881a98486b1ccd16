// Every limit of Tandem, declared once, units last (TigerBeetle `constants.zig`). Device and cloud
// both import this file; a limit that only one side enforces still lives here so the two never
// disagree. Add new limits to the section they belong to.

// Build
/**
 * The minified firmware bundle may not grow past this (checked by `npm run build`). The first
 * budget, 24 KiB, held the platform demo; the full firmware (MQTT client, codec, state store, ring,
 * sync engine, example app) measured 46.0 KB after name mangling, and the durable event cache
 * (flash spill tier, backlog sync) adds about 12 KB. RAM is the tighter limit: run from Storage as
 * a flashed board runs it, see README "Limits" for the JsVars the firmware leaves free.
 */
export const firmwareBundleBytesMax = 60 * 1024;

// Cloud stub (cloud-stub/): enforced by the cloud only, declared here so the device can stay inside them.
/** One HTTP request body (JSON) accepted by the cloud's API. */
export const httpBodyBytesMax = 64 * 1024;
/** Nesting depth of a JSON body; deeper input is refused rather than recursed into. */
export const httpJsonDepthMax = 16;
/** Rows returned by one page of `GET /api/devices/:id/events`. */
export const eventsPageRowsMax = 1000;
/** A cloud-to-device message body, as JSON text. */
export const cloudMessageBytesMax = 1024;
/** Time to live of a cloud-to-device message or an RPC request. */
export const cloudMessageTtlSecMax = 7 * 24 * 3600;
/** Messages waiting for one device; posting more is refused (429) rather than growing without end. */
export const cloudMessagesQueuedPerDeviceMax = 256;
/** Acknowledged and expired cloud-to-device messages stay listed this long, then are purged. */
export const cloudMessageRetentionMs = 24 * 3600 * 1000;
/** One state value (desired or reported), as JSON text. */
export const stateValueBytesMax = 512;
/** State keys: 1 to this many characters of [A-Za-z0-9_.-]. */
export const stateKeyLengthMax = 32;
/** Events committed by one group-commit transaction; bounds how long it holds the event loop. */
export const ingestGroupRowsMax = 4096;
/** Target duration of one group-commit transaction: the row cap shrinks below ingestGroupRowsMax to keep it. */
export const ingestCommitMsTarget = 20;
/** The row cap never shrinks below this, so a slow disk still makes progress in sizeable steps. */
export const ingestGroupRowsMin = 64;
/** How long the first ingest call of a group waits for others to join it. */
export const ingestGroupWaitMsMax = 2;
/** Ingest calls waiting for a commit; beyond this, ingest is refused with a retryable code. */
export const ingestPendingRowsMax = 200000;
/** Bytes buffered for one Server-Sent Events client before it is dropped as too slow. */
export const liveStreamBufferBytesMax = 1024 * 1024;
/** One MQTT publish the embedded broker accepts from a device; the session enforces the frame limit below it. */
export const cloudUplinkPayloadBytesMax = 64 * 1024;

// MQTT (device client, firmware/core/mqtt)
/** Largest MQTT packet the device sends, fixed header included (CONNECT, PUBLISH, SUBSCRIBE). */
export const mqttPacketBytesMax = 1024;
/** Largest MQTT packet the device accepts; the receive buffer holds one packet after its fixed header. */
export const mqttReceiveBufferBytes = 1024;
/** QoS 1 publishes sent (or queued to send) and not yet acknowledged, at most. */
export const mqttInFlightMessagesMax = 4;
/** Bytes of encoded QoS 1 publishes kept for retransmission, at most. */
export const mqttInFlightBytesMax = 2048;
/** Keepalive announced in CONNECT; a PINGREQ goes out when the link has been quiet this long. */
export const mqttKeepAliveSec = 60;
/** Time allowed for TCP connect + CONNACK, and for a PINGRESP, before the link counts as dead. */
export const mqttResponseTimeoutMs = 10000;
/** An unacknowledged QoS 1 publish is sent again (DUP) after this long on the same connection. */
export const mqttRetransmitMs = 20000;
/** Reconnect backoff: doubles from min to max per failed attempt, with jitter of up to half. */
export const mqttBackoffMsMin = 1000;
export const mqttBackoffMsMax = 60000;
/** After the broker refused the credentials, wait this long before trying again. */
export const mqttAuthRetryMs = 300000;

// Device storage (firmware/core/event-cache.ts, firmware/core/state-store.ts)
/** Default capacity of the RAM event cache (one preallocated Uint8Array), headers included. */
export const eventCacheBytesMax = 4096;
/** One encoded event accepted by the event cache (the codec's record, without the cache header). */
export const eventRecordBytesMax = 512;
/** Erasable sector of the state store's flash area (the ESP32's flash page). */
export const stateStoreSectorBytes = 4096;
/** Sectors a state store may span (64 KiB by default: 16 sectors; at least 2 for rotation). */
export const stateStoreSectorCountMax = 64;
/** Sectors of the state store on a board by default (64 KiB). */
export const stateStoreSectorCountDefault = 16;
/** Keys of one state template (key ids 0..stateStoreKeysMax-1). */
export const stateStoreKeysMax = 64;
/** One state value on flash: a short string or a small record, in bytes. */
export const stateStoreValueBytesMax = 64;
/** Default window over which repeated writes of a key are coalesced into one record (0 = off). */
export const stateStoreCoalesceWindowMs = 0;

// Wire protocol and templates (firmware/protocol: frame.ts, record.ts, untemplated.ts, SPEC.md)
/** Longest frame the codec encodes or accepts, CRC included: with a 36-byte topic, packet id and fixed header it fits mqttPacketBytesMax. */
export const wireFrameBytesMax = 960;
/** Records in one frame at most (the count is one byte on the wire). */
export const wireRecordsPerFrameMax = 255;
/** Fields in one template at most; sizes the codec's preallocated scratch. */
export const wireTemplateFieldsMax = 32;
/** Template ids run from 1 to this. */
export const wireTemplateIdMax = 255;
/** Templates one registry (device or cloud) holds at most. */
export const wireTemplatesMax = 64;
/** Field, enum label and template names: 1 to this many characters. */
export const wireFieldNameLengthMax = 24;
/** A template string field may declare at most this many bytes. */
export const wireStringBytesMax = 255;
/** [WIRE-25] Timestamps are Unix epoch milliseconds from 0 to this (2^47 ms, about the year 6429). */
export const wireTimestampMsMax = 140737488355328;
/** Untemplated data: containers nest at most this deep (a record itself is depth 1). */
export const wireUntemplatedDepthMax = 6;
/** Untemplated data: distinct object keys remembered per frame for back-references. */
export const wireUntemplatedKeysMax = 32;

// Sync session (firmware/core/sync-engine.ts, cloud-stub/sync-session.ts; SPEC.md "Sync session")
/** RPC requests a device keeps waiting for their results at once. */
export const rpcPendingMax = 4;
/** Arguments of one RPC request (JSON text), in bytes. */
export const rpcArgsBytesMax = 512;
/** Events sent but not acknowledged for this long are sent again (the cloud dedupes them). */
export const syncAckTimeoutMs = 30000;
/** Periodic mode: a session with nothing left to deliver disconnects after this long. */
export const syncPeriodicIdleMs = 2000;
/** Periodic mode connects before its period once the durable event cache's area is this full (percent). */
export const syncFlashFillPercentTrigger = 75;
/** Cloud-to-device messages the cloud sends in one session before waiting for acks. */
export const syncMessagesPerSessionMax = 16;

// Cloud downstream routes (cloud-stub/downstream; cloud-stub/DESIGN.md "Downstream routes")
/** Events or state changes one route reads and delivers in one batch at most. */
export const downstreamBatchRowsMax = 1000;
/** A route with nothing to deliver looks again after this long (other processes may have ingested). */
export const downstreamPollMs = 1000;
/** First retry delay of a failed delivery; it doubles per attempt up to downstreamBackoffMsMax. */
export const downstreamBackoffMs = 200;
export const downstreamBackoffMsMax = 60000;
/** One delivery attempt (HTTP POST, MQTT acknowledgements, PostgreSQL insert) gives up after this long. */
export const downstreamAttemptTimeoutMs = 10000;
/** Routes one downstream config file may declare. */
export const downstreamRoutesMax = 32;
/** Dead letters one HTTP page returns at most. */
export const downstreamDeadLettersPageMax = 100;
/** RPC requests one page of a device's RPC log returns at most. */
export const rpcLogPageRowsMax = 200;
/** State changes every route has delivered are purged after this long (7 days). */
export const stateChangeRetentionMs = 604800000;

// Durable event cache (firmware/core/event-spill.ts; firmware/DESIGN.md "Durable event cache")
/** Flash area of the event spill tier on a board when it is on (32 sectors of 4 KiB). */
export const spillAreaBytesDefault = 128 * 1024;
/** Sectors (segments) one spill area may span; sizes its per-segment tables. */
export const spillSectorCountMax = 64;
/** A spill chunk is programmed once it would grow past this many bytes (one RAM chunk buffer). */
export const spillChunkBytes = 512;
/** Ack records per segment; an ack that finds none free goes to a newer segment of its epoch. */
export const spillAckSlotsPerSegment = 16;
/** A spilled event waits in RAM at most this long (plus one tick) before it is programmed. */
export const spillFlushDelayMs = 1000;
