// The cloud's counters and gauges, rendered as Prometheus text for GET /metrics. Counters are
// plain numbers bumped on the hot path; gauges that need a query are read only at scrape time.

export type MetricKind = 'counter' | 'gauge';

interface MetricFamily {
  name: string;
  help: string;
  kind: MetricKind;
  /** Values by label text (`{route="x"}` or '' for none). */
  values: Map<string, number>;
}

function labelText(labels: Record<string, string> | undefined): string {
  if (labels === undefined) return '';
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  const escape = (value: string): string => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
  return '{' + keys.map((key) => `${key}="${escape(labels[key]!)}"`).join(',') + '}';
}

export class Metrics {
  private readonly families = new Map<string, MetricFamily>();
  private readonly collectors: Array<() => Promise<void> | void> = [];

  private family(name: string, help: string, kind: MetricKind): MetricFamily {
    let family = this.families.get(name);
    if (family === undefined) {
      family = { name, help, kind, values: new Map() };
      this.families.set(name, family);
    }
    return family;
  }

  /** Declares a metric so it shows (as 0) before its first event. */
  declare(name: string, help: string, kind: MetricKind = 'counter'): void {
    const family = this.family(name, help, kind);
    if (!family.values.has('')) family.values.set('', 0);
  }

  increment(name: string, by = 1, labels?: Record<string, string>): void {
    const family = this.families.get(name);
    if (family === undefined) throw new Error(`metric ${name} was never declared`);
    const key = labelText(labels);
    family.values.set(key, (family.values.get(key) ?? 0) + by);
  }

  set(name: string, value: number, labels?: Record<string, string>): void {
    const family = this.families.get(name);
    if (family === undefined) throw new Error(`metric ${name} was never declared`);
    family.values.set(labelText(labels), value);
  }

  get(name: string, labels?: Record<string, string>): number {
    return this.families.get(name)?.values.get(labelText(labels)) ?? 0;
  }

  /** Runs before each render: for gauges read from the database or the broker. */
  collect(collector: () => Promise<void> | void): void {
    this.collectors.push(collector);
  }

  async render(): Promise<string> {
    for (const collector of this.collectors) await collector();
    const lines: string[] = [];
    for (const family of this.families.values()) {
      lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.kind}`);
      for (const [labels, value] of family.values) {
        // A labelled family keeps its unlabelled placeholder out of the output once it has labels.
        if (labels === '' && family.values.size > 1 && value === 0) continue;
        lines.push(`${family.name}${labels} ${value}`);
      }
    }
    return lines.join('\n') + '\n';
  }
}

/** Every metric the cloud stub reports, declared in one place. */
export function createCloudMetrics(): Metrics {
  const metrics = new Metrics();
  metrics.declare('tandem_ingest_events_total', 'Events committed (new, not duplicates).');
  metrics.declare('tandem_ingest_duplicates_total', 'Events received again and recognised by (device, epoch, seq).');
  metrics.declare('tandem_ingest_batches_total', 'Ingest calls committed.');
  metrics.declare('tandem_ingest_commits_total', 'Group-commit transactions.');
  metrics.declare('tandem_ingest_commit_seconds_total', 'Time spent in group-commit transactions.');
  metrics.declare('tandem_ingest_commit_seconds_max', 'Longest group-commit transaction since start.', 'gauge');
  metrics.declare('tandem_ingest_overloaded_total', 'Ingest calls refused because too many rows were waiting for a commit.');
  metrics.declare('tandem_ingest_pending_rows', 'Rows waiting for a commit.', 'gauge');
  metrics.declare('tandem_mqtt_connected_devices', 'Devices connected now.', 'gauge');
  metrics.declare('tandem_mqtt_connections_total', 'Successful MQTT connections (devices and services).');
  metrics.declare('tandem_mqtt_auth_failures_total', 'MQTT CONNECTs refused (unknown device, wrong secret, client id mismatch).');
  metrics.declare('tandem_mqtt_acl_denials_total', 'Publishes or subscriptions outside a client\'s own topics.');
  metrics.declare('tandem_uplink_messages_total', 'Uplink messages received from devices.');
  metrics.declare('tandem_uplink_dropped_total', 'Uplink messages dropped because a device\'s queue was full (the device retransmits: nothing was acknowledged).');
  metrics.declare('tandem_uplink_errors_total', 'Uplink messages whose handler failed.');
  metrics.declare('tandem_downlink_messages_total', 'Downlink messages published to devices.');
  metrics.declare('tandem_c2d_queue_depth', 'Cloud-to-device messages queued or delivered but not yet acknowledged.', 'gauge');
  metrics.declare('tandem_c2d_expired_total', 'Cloud-to-device messages that expired before acknowledgement.');
  metrics.declare('tandem_rpc_pending', 'RPC requests pending or running.', 'gauge');
  metrics.declare('tandem_http_requests_total', 'HTTP requests by status code.');
  metrics.declare('tandem_live_clients', 'Server-Sent Events clients connected now.', 'gauge');
  metrics.declare('tandem_live_dropped_clients_total', 'Server-Sent Events clients dropped for reading too slowly.');
  return metrics;
}
