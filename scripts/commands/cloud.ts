// `tandem cloud`: runs the cloud stub alone (broker, storage, HTTP API) until Ctrl-C.
import { ExternalBrokerError, PortInUseError, startCloud } from '../../cloud-stub/server.ts';
import { TlsMaterialError } from '../../cloud-stub/tls-material.ts';
import { RpcConfigError } from '../../cloud-stub/rpc-proxy.ts';
import { DownstreamConfigError } from '../../cloud-stub/downstream/config.ts';
import { parseOptions, parseWholeNumber, runCommand, UsageError } from '../cli.ts';

export const summary = 'Run the cloud stub alone: MQTT broker, storage and HTTP API (Ctrl-C stops it)';

const usage = `Usage: tandem cloud [options]

  --mqtt-port N     embedded MQTT broker port (default 1883; 0 picks a free one)
  --tls-port N      also listen for MQTT over TLS (mqtts) on N, with a local CA (off by default)
  --tls-host NAME   extra host name or address the TLS certificate covers (repeatable)
  --http-port N     HTTP API port (default 8080)
  --host ADDR       address to listen on (default 0.0.0.0, all interfaces)
  --data-dir DIR    data directory (default TANDEM_DATA_DIR or .tandem/cloud)
  --rpc-routes FILE RPC routes the devices may call (JSON; see cloud-stub/rpc-proxy.ts)
  --downstream FILE downstream routes for committed events and state changes: webhook, ndjson,
                    postgres (typed tables), mqtt (JSON; see cloud-stub/DESIGN.md)

Environment:
  MQTT_URL            use this external broker (shared subscriptions) instead of the embedded one
  TANDEM_SHARE_GROUP  shared-subscription group with MQTT_URL (default tandem)
  DATABASE_URL        use PostgreSQL instead of the SQLite file in the data directory`;

function port(flag: string, value: string | undefined, fallback: number): number {
  const number = parseWholeNumber('cloud', flag, value, fallback);
  if (number > 65535) throw new UsageError(`tandem cloud: --${flag} must be from 0 to 65535, got ${number}.`);
  return number;
}

export function run(args: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseOptions('cloud', args, {
      help: { type: 'boolean' },
      'mqtt-port': { type: 'string' },
      'tls-port': { type: 'string' },
      'tls-host': { type: 'string', multiple: true },
      'http-port': { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      'rpc-routes': { type: 'string' },
      downstream: { type: 'string' },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const started = Date.now();
    console.log('cloud: starting ...');
    let cloud;
    try {
      cloud = await startCloud({
        dataDir: values['data-dir'],
        mqttPort: port('mqtt-port', values['mqtt-port'], 1883),
        tlsPort: values['tls-port'] === undefined ? undefined : port('tls-port', values['tls-port'], 8883),
        tlsHostNames: values['tls-host'],
        httpPort: port('http-port', values['http-port'], 8080),
        mqttHost: values.host,
        httpHost: values.host,
        mqttUrl: process.env.MQTT_URL,
        shareGroup: process.env.TANDEM_SHARE_GROUP,
        databaseUrl: process.env.DATABASE_URL,
        rpcRoutesPath: values['rpc-routes'],
        downstreamPath: values.downstream,
        log: (line) => console.log(`cloud: ${line}`),
      });
    } catch (error) {
      if (error instanceof PortInUseError || error instanceof ExternalBrokerError || error instanceof TlsMaterialError || error instanceof RpcConfigError || error instanceof DownstreamConfigError) {
        throw new UsageError(`tandem cloud: ${error.message}`);
      }
      const code = (error as NodeJS.ErrnoException).code;
      if (process.env.DATABASE_URL && (code === 'ECONNREFUSED' || code === '28P01' || code === '3D000' || code === 'ENOTFOUND')) {
        throw new UsageError(`tandem cloud: cannot open the PostgreSQL database in DATABASE_URL: ${(error as Error).message}.`);
      }
      throw error;
    }
    console.log(`cloud: data directory ${cloud.dataDir}`);
    if (cloud.adminTokenCreated) {
      console.log(`cloud: admin token (shown once, kept in ${cloud.dataDir}/admin-token): ${cloud.adminToken}`);
    } else {
      console.log(`cloud: admin token in ${cloud.dataDir}/admin-token`);
    }
    console.log(`cloud: ready in ${Date.now() - started} ms. Provision a device with \`npx tandem provision DEVICE\`. Ctrl-C stops.`);

    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        console.log(`cloud: ${signal}, stopping ...`);
        resolve();
      };
      const onInt = (): void => stop('SIGINT');
      const onTerm = (): void => stop('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
    });
    await cloud.stop();
    console.log('cloud: stopped');
    return 0;
  });
}
