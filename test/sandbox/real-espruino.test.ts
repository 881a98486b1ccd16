// The same bundle in a real Espruino Linux binary, when the user has one (ESPRUINO_BIN). Without
// it these tests report themselves skipped. Parity checks of the sandbox: real-espruino-parity.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RealEspruino, cleanConsoleLine, runEspruinoCode, writeDeviceConfigWithBinary } from '../../hal-mocks/espruino-sandbox/real-espruino.ts';
import { buildBundle, closedPort, startServer, temporaryDir, waitFor, type TestServer } from './helpers.ts';

const binaryPath = process.env.ESPRUINO_BIN ?? '';
const haveBinary = binaryPath !== '';

let bundlePath = '';
let server: TestServer | undefined;
let device: RealEspruino | undefined;

beforeAll(async () => {
  if (haveBinary) bundlePath = await buildBundle();
});

afterEach(async () => {
  await device?.stop();
  device = undefined;
  await server?.close();
  server = undefined;
});

describe('console lines of a real interpreter', () => {
  it('drops carriage returns, prompts and erase sequences', () => {
    expect(cleanConsoleLine('>Tandem firmware 0.1.0\r')).toBe('Tandem firmware 0.1.0');
    expect(cleanConsoleLine('\x1b[J>\r')).toBeUndefined();
    expect(cleanConsoleLine('\x08\x08tcp: connected\r')).toBe('tcp: connected');
  });
});

describe(`real Espruino binary (ESPRUINO_BIN=${binaryPath || 'unset'})`, () => {
  it.skipIf(!haveBinary)('stores files with -e code and reads them back in a later run', async () => {
    const workDir = temporaryDir('espruino');
    const written = await runEspruinoCode(binaryPath, workDir, 'require("Storage").write("probe","\\xff\\x00ok");print("W");quit();');
    expect(written.lines).toContain('W');
    const read = await runEspruinoCode(binaryPath, workDir, 'print(JSON.stringify(require("Storage").read("probe")));quit();');
    expect(read.lines).toContain('"\\u00FF\\u0000ok"');
  });

  it.skipIf(!haveBinary)('boots the firmware bundle: banner, config, boot counter, TCP, heartbeat; a refusal is retried', async () => {
    const workDir = temporaryDir('espruino');
    server = await startServer((socket) => socket.write('hi'));
    await writeDeviceConfigWithBinary(binaryPath, workDir, { deviceId: 'emu-real', secret: 's', mqttHost: '127.0.0.1', mqttPort: server.port, tls: false });
    const lines: string[] = [];
    device = new RealEspruino({ binaryPath, workDir, bundlePath, onConsoleLine: (line) => lines.push(line) });
    void device.start();
    await waitFor(() => lines.includes('tcp: received 2 bytes'), 'the firmware to connect and receive', 8000);
    expect(lines).toContain('device emu-real, boot #1');
    expect(lines.some((line) => line.startsWith('Tandem firmware 0.1.0 on Espruino 2v'))).toBe(true);
    expect(lines).toContain(`tcp: connected to 127.0.0.1:${server.port}`);
    expect(lines).toContain('network: no Wifi module, using the host network');
    await waitFor(() => lines.some((line) => line.startsWith('uptime 10 s')), 'the heartbeat', 12_000);
    await device.stop();

    // Second run on the same espruino.flash, against a port nobody listens on: Linux builds throw
    // from connect(), which the HAL reports as a failed connection.
    const port = await closedPort();
    await writeDeviceConfigWithBinary(binaryPath, workDir, { deviceId: 'emu-real', secret: 's', mqttHost: '127.0.0.1', mqttPort: port, tls: false });
    const again: string[] = [];
    device = new RealEspruino({ binaryPath, workDir, bundlePath, onConsoleLine: (line) => again.push(line) });
    void device.start();
    await waitFor(() => again.some((line) => line.startsWith('tcp: could not connect')), 'the refusal', 8000);
    expect(again).toContain('device emu-real, boot #2');
    expect(again.filter((line) => line.startsWith('Uncaught'))).toEqual([]);
  }, 40_000);
});
