// Who may publish and subscribe where. A device only on its own topics; a cloud-internal service
// on the uplink and presence topics of every device and the downlink of any device. Pure
// functions, so the rules are tested without a broker.
import { downlinkTopic, isValidDeviceId, presenceTopic, uplinkTopic } from '../firmware/protocol/topics.ts';

export type Identity = { kind: 'device'; deviceId: string } | { kind: 'service' };

export function mayPublish(identity: Identity, topic: string): boolean {
  if (identity.kind === 'device') return topic === uplinkTopic(identity.deviceId) || topic === presenceTopic(identity.deviceId);
  const parts = topic.split('/');
  return parts.length === 3 && parts[0] === 't' && isValidDeviceId(parts[1]!) && parts[2] === 'd';
}

const serviceFilters = new Set(['t/+/u', 't/+/p']);

export function maySubscribe(identity: Identity, filter: string): boolean {
  if (identity.kind === 'device') return filter === downlinkTopic(identity.deviceId);
  if (serviceFilters.has(filter)) return true;
  // `$share/<group>/<filter>`: several cloud processes splitting the uplinks between them.
  const shared = /^\$share\/[A-Za-z0-9_-]{1,64}\/(.+)$/.exec(filter);
  return shared !== null && serviceFilters.has(shared[1]!);
}
