// The MQTT client bundled for Espruino (esbuild + the Espruino gate) and run in a real Espruino
// Linux binary against Mosquitto: the same code path a board takes, byte strings on the socket.
// Needs the binary: set ESPRUINO_BIN (as `tandem emulate` does); without it this file is skipped.
import mqtt from 'mqtt';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { downlinkTopic, presenceTopic, uplinkTopic } from '../../firmware/protocol/topics.ts';
import { RealEspruino } from '../../hal-mocks/espruino-sandbox/real-espruino.ts';
import { buildFirmware } from '../../scripts/build/build-firmware.ts';
import { uniqueId, waitFor } from './helpers/client-harness.ts';

const binary = process.env.ESPRUINO_BIN ?? '';
const root = resolve(import.meta.dirname, '..', '..');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A device program: the client over Espruino's `net`, printing each event as one line. */
function entrySource(deviceId: string): string {
  const core = (path: string) => JSON.stringify(join(root, path));
  return `
import { MqttClient } from ${core('firmware/core/mqtt/mqtt-client.ts')};
import { EspruinoNetwork } from ${core('firmware/hal/espruino/network.ts')};
import { EspruinoClock } from ${core('firmware/hal/espruino/clock.ts')};
import { downlinkTopic, presenceTopic, uplinkTopic } from ${core('firmware/protocol/topics.ts')};
const clock = new EspruinoClock();
let seed = 7;
const random = { nextUint32: function () { seed = (seed * 1103515245 + 12345) % 4294967296; return seed; } };
function hex(bytes: Uint8Array, offset: number, length: number): string {
  let text = '';
  for (let i = offset; i < offset + length; i++) text += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
  return text;
}
let client: MqttClient;
let received = 0;
declare const process: { memory(): { usage: number } };
const events = {
  onConnect: function (sessionPresent: boolean) {
    console.log('EV connect ' + sessionPresent);
    client.subscribe(downlinkTopic(${JSON.stringify(deviceId)}), 1);
    client.publish(uplinkTopic(${JSON.stringify(deviceId)}), 'from espruino', 1, false);
    client.publish(uplinkTopic(${JSON.stringify(deviceId)}), new Uint8Array([0, 255, 128, 10]), 1, false);
  },
  onMessage: function (topic: string, bytes: Uint8Array, offset: number, length: number) {
    received++;
    if (received === 1) console.log('EV message ' + topic + ' ' + hex(bytes, offset, length));
    // Heap in use after the 10th and the 110th message: the client allocates nothing per message.
    if (received === 10 || received === 110) console.log('EV memory ' + received + ' ' + process.memory().usage);
  },
  onPublishAcked: function (packetId: number) { console.log('EV acked ' + packetId); },
  onSubscribeAcked: function (packetId: number, grantedQos: number) { console.log('EV suback ' + packetId + ' ' + grantedQos); },
  onDisconnect: function (code: number) { console.log('EV disconnect ' + code); },
};
client = new MqttClient(new EspruinoNetwork(undefined), random, events, {
  host: '127.0.0.1', port: 1883, secure: false, clientId: ${JSON.stringify(deviceId)}, username: null, password: null,
  presenceTopic: presenceTopic(${JSON.stringify(deviceId)}), cleanSession: false, keepAliveSec: 30,
});
client.start(clock.nowMs());
setInterval(function () { client.tick(clock.nowMs()); }, 50);
`;
}

describe.skipIf(binary === '' || !existsSync(binary))('MQTT client in a real Espruino binary', () => {
  it('connects to Mosquitto, publishes QoS 1 (acked), receives binary payloads; its Last Will fires when killed', async () => {
    const id = uniqueId('e');
    const dir = mkdtempSync(join(tmpdir(), 'tandem-mqtt-espruino-'));
    const entry = join(dir, 'entry.ts');
    writeFileSync(entry, entrySource(id));
    const built = await buildFirmware({ entry, outFile: join(dir, 'mqtt.js'), quiet: true });
    expect(built.failures).toEqual([]);

    const js = await mqtt.connectAsync('mqtt://127.0.0.1:1883', { clientId: uniqueId('cloud'), reconnectPeriod: 0 });
    cleanups.push(() => js.endAsync(true));
    const cloudGot: string[] = [];
    js.on('message', (topic, payload) => cloudGot.push(`${topic} ${payload.toString('hex')}`));
    await js.subscribeAsync([uplinkTopic(id), presenceTopic(id)], { qos: 1 });

    const lines: string[] = [];
    const device = new RealEspruino({ binaryPath: binary, workDir: dir, bundlePath: join(dir, 'mqtt.js'), onConsoleLine: (line) => lines.push(line) });
    void device.start();
    cleanups.push(() => device.stop());
    const events = () => lines.filter((line) => line.startsWith('EV ')).map((line) => line.slice(3));
    await waitFor('suback and two acks', () => events().filter((e) => e.startsWith('acked') || e.startsWith('suback')).length === 3, 15000);
    expect(events()).toContain('connect false');
    expect(events()).toContain('suback 1 1');
    expect(events().filter((e) => e.startsWith('acked')).sort()).toEqual(['acked 2', 'acked 3']);
    await waitFor('cloud got both', () => cloudGot.length === 3);
    expect(cloudGot).toEqual([
      `${presenceTopic(id)} ${Buffer.from('1').toString('hex')}`,
      `${uplinkTopic(id)} ${Buffer.from('from espruino').toString('hex')}`,
      `${uplinkTopic(id)} 00ff800a`,
    ]);

    await js.publishAsync(downlinkTopic(id), Buffer.from([1, 0, 255, 200]), { qos: 1 });
    await waitFor('device got it', () => events().some((e) => e.startsWith('message')), 10000);
    expect(events()).toContain(`message ${downlinkTopic(id)} 0100ffc8`);

    for (let i = 1; i < 110; i++) void js.publish(downlinkTopic(id), `message ${i} `.padEnd(40, '.'), { qos: (i % 2) as 0 | 1 });
    await waitFor('110 messages', () => events().some((e) => e.startsWith('memory 110')), 15000);
    const memory = events().filter((e) => e.startsWith('memory')).map((e) => Number(e.split(' ')[2]));
    console.log(`Espruino heap in use (JsVars) after message 10: ${memory[0]}, after message 110: ${memory[1]}`);
    expect(memory[1] - memory[0]).toBeLessThanOrEqual(5);

    await device.stop(); // SIGTERM: the process dies without DISCONNECT
    await waitFor('last will', () => cloudGot.includes(`${presenceTopic(id)} ${Buffer.from('0').toString('hex')}`), 10000);
  });
});
