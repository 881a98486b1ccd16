// MQTT topics between a device and its cloud. Kept short: every publish carries its topic, and on
// a cellular link every byte is paid for. The first byte of each payload names the message type
// (see SPEC.md).

/** Device to cloud: every uplink message of the sync session. */
export function uplinkTopic(deviceId: string): string {
  return 't/' + deviceId + '/u';
}

/** Cloud to device: every downlink message of the sync session. */
export function downlinkTopic(deviceId: string): string {
  return 't/' + deviceId + '/d';
}

/** Presence: retained "1" while connected; the device's Last Will sets it to "0". */
export function presenceTopic(deviceId: string): string {
  return 't/' + deviceId + '/p';
}

/** Device ids: 1 to 32 characters of [A-Za-z0-9_-], so they are safe inside topics and file names. */
export const deviceIdLengthMax = 32;

export function isValidDeviceId(deviceId: string): boolean {
  if (deviceId.length < 1 || deviceId.length > deviceIdLengthMax) return false;
  for (let i = 0; i < deviceId.length; i++) {
    const c = deviceId.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 95;
    if (!ok) return false;
  }
  return true;
}
