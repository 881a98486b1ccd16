// The dashboard's logic: reads the cloud's HTTP API (devices, state, events, queue, RPC log), the
// live stream (Server-Sent Events) and, under `npm start`, the fleet controls of the emulated
// devices; renders them as plain DOM. Every request carries the admin token.
import { drawChart, formatNumber } from './charts.js';

/** The demo application's cloud-owned keys (firmware/protocol/templates/demo-state.ts), offered for editing before they have a value. */
const suggestedDesiredKeys = ['led', 'reportIntervalSec'];
const refreshMs = 2000;
const chartWindowMs = 10 * 60 * 1000;
const pointsPerSeriesMax = 600;
const eventsShownMax = 60;
/** Field types that are numbers but not worth a chart (time stamps are the x axis). */
const unchartedTypes = new Set(['timestamp', 'bool', 'enum', 'string', 'bytes']);

const view = {
  token: null,
  /** deviceId → { record, fleet, state, events: [], series: Map(key → {template, field, unit, points}) } */
  devices: new Map(),
  selected: null,
  hasFleet: true,
  templates: new Map(),
  stream: null,
  loadedEvents: new Set(),
};

const $ = (id) => document.getElementById(id);

function text(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function cell(content, className) {
  const td = document.createElement('td');
  if (content instanceof Node) td.append(content);
  else td.textContent = content;
  if (className) td.className = className;
  return td;
}

function pill(label, kind) {
  const span = document.createElement('span');
  span.className = `pill ${kind ?? ''}`;
  span.textContent = label;
  return span;
}

function button(label, onClick, testId) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  if (testId) b.dataset.testid = testId;
  b.addEventListener('click', (event) => {
    event.stopPropagation();
    onClick(b);
  });
  return b;
}

function ago(ms) {
  if (!ms) return 'never';
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function bytes(n) {
  if (n === null || n === undefined) return '-';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

// ---- HTTP --------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, options = {}) {
  const headers = { authorization: `Bearer ${view.token}`, ...(options.headers ?? {}) };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method: options.method ?? 'GET', headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.status === 401) {
    showLogin('That token was refused.');
    throw new ApiError(401, body);
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return { body, etag: response.headers.get('etag') };
}

// ---- Model -------------------------------------------------------------------------------------

function deviceEntry(deviceId) {
  let entry = view.devices.get(deviceId);
  if (entry === undefined) {
    entry = { record: null, fleet: null, state: null, events: [], series: new Map(), eventsLoaded: false };
    view.devices.set(deviceId, entry);
  }
  return entry;
}

function statusOf(entry) {
  const status = entry.state?.entries.find((e) => e.key === 'status');
  return status?.reportedValue ?? null;
}

/** Adds one event to the device's list and its charts, in time order, once. */
function addEvent(deviceId, event) {
  const entry = deviceEntry(deviceId);
  const key = `${event.epoch}:${event.seq}`;
  if (entry.events.some((e) => `${e.epoch}:${e.seq}` === key)) return false;
  entry.events.push(event);
  entry.events.sort((a, b) => a.ts - b.ts || a.seq - b.seq);
  if (entry.events.length > 500) entry.events.splice(0, entry.events.length - 500);
  const template = view.templates.get(event.templateId);
  if (event.fields && typeof event.fields === 'object') {
    for (const [name, value] of Object.entries(event.fields)) {
      if (typeof value !== 'number') continue;
      const field = template?.fields.find((f) => f.name === name);
      if (field !== undefined && unchartedTypes.has(field.type)) continue;
      if (field === undefined && (name === 'ts' || name.endsWith('Ts'))) continue;
      const seriesKey = `${event.templateId}.${name}`;
      let series = entry.series.get(seriesKey);
      if (series === undefined) {
        series = { template: event.templateId, field: name, unit: field?.unit ?? '', points: [] };
        entry.series.set(seriesKey, series);
      }
      const point = { t: event.ts, v: value };
      let at = series.points.length;
      while (at > 0 && series.points[at - 1].t > point.t) at--;
      series.points.splice(at, 0, point);
      if (series.points.length > pointsPerSeriesMax) series.points.shift();
    }
  }
  return true;
}

// ---- Loading -----------------------------------------------------------------------------------

async function loadTemplates() {
  try {
    const { body } = await api('/api/templates');
    for (const template of body.templates) view.templates.set(template.name, template);
  } catch (error) {
    // A refused token stops the start; otherwise charts fall back to "every number but time stamps".
    if (error.status === 401) throw error;
  }
}

async function refreshFleet() {
  const [devices, fleet] = await Promise.all([
    api('/api/devices'),
    view.hasFleet ? api('/fleet/devices').catch((error) => {
      if (error.status === 404) view.hasFleet = false;
      return null;
    }) : Promise.resolve(null),
  ]);
  const seen = new Set();
  for (const record of devices.body.devices) {
    seen.add(record.deviceId);
    deviceEntry(record.deviceId).record = record;
  }
  if (fleet !== null) for (const device of fleet.body.devices) {
    seen.add(device.deviceId);
    deviceEntry(device.deviceId).fleet = device;
  }
  for (const id of [...view.devices.keys()]) if (!seen.has(id)) view.devices.delete(id);
  await Promise.all([...view.devices.keys()].map((id) => refreshState(id, false)));
  if (view.selected === null || !view.devices.has(view.selected)) view.selected = [...view.devices.keys()].sort()[0] ?? null;
  renderFleet();
  await renderDetail();
}

async function refreshState(deviceId, render = true) {
  try {
    const { body } = await api(`/api/devices/${encodeURIComponent(deviceId)}/state`);
    deviceEntry(deviceId).state = body;
  } catch {
    return;
  }
  if (render) {
    renderFleet();
    if (deviceId === view.selected) {
      renderBadges();
      renderState();
    }
  }
}

async function loadRecentEvents(deviceId) {
  const entry = deviceEntry(deviceId);
  if (entry.eventsLoaded) return;
  entry.eventsLoaded = true;
  let cursor = null;
  const from = Date.now() - chartWindowMs;
  for (let page = 0; page < 5; page++) {
    const query = `from=${from}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const { body } = await api(`/api/devices/${encodeURIComponent(deviceId)}/events?${query}`);
    for (const event of body.events) addEvent(deviceId, event);
    cursor = body.nextCursor;
    if (!cursor) break;
  }
}

// ---- Rendering ---------------------------------------------------------------------------------

/** One persistent row per device: cells are patched in place, so a click never lands on a node being replaced. */
const fleetRows = new Map();

function setCell(td, content) {
  const key = content instanceof Node ? content.outerHTML : String(content);
  if (td.dataset.content === key) return;
  td.dataset.content = key;
  if (content instanceof Node) td.replaceChildren(content);
  else td.textContent = content;
}

function fleetRow(id) {
  let row = fleetRows.get(id);
  if (row !== undefined) return row;
  const tr = document.createElement('tr');
  tr.dataset.testid = `row-${id}`;
  tr.addEventListener('click', () => select(id));
  const cells = [];
  for (let i = 0; i < 11; i++) {
    const td = document.createElement('td');
    if (i >= 4) td.className = 'num';
    cells.push(td);
    tr.append(td);
  }
  const controls = document.createElement('div');
  controls.className = 'controls';
  const network = button('Go offline', (b) => {
    const fleet = deviceEntry(id).fleet;
    if (fleet) void control(b, id, 'network', { online: !fleet.networkOnline });
  }, `network-${id}`);
  const power = button('Power-cycle', (b) => control(b, id, 'power-cycle'), `power-${id}`);
  const press = button('Button', (b) => control(b, id, 'button'), `button-${id}`);
  press.title = 'Press the device button: it asks the cloud for the weather (an RPC)';
  const none = pill('no fleet in this process');
  controls.append(network, power, press, none);
  const controlCell = document.createElement('td');
  controlCell.append(controls);
  tr.append(controlCell);
  row = { tr, cells, network, power, press, none };
  fleetRows.set(id, row);
  return row;
}

function renderFleet() {
  const tbody = $('fleet').querySelector('tbody');
  let connected = 0;
  const ids = [...view.devices.keys()].sort();
  for (const id of ids) {
    const entry = view.devices.get(id);
    const status = statusOf(entry);
    const fleet = entry.fleet;
    if (entry.record?.connected) connected++;
    const row = fleetRow(id);
    row.tr.classList.toggle('selected', id === view.selected);
    const c = row.cells;
    const name = document.createElement('span');
    name.innerHTML = '<strong></strong> <span class="muted small"></span>';
    name.firstChild.textContent = id;
    name.lastChild.textContent = fleet ? fleet.runtime : '';
    setCell(c[0], name);
    let broker;
    if (entry.record?.connected) broker = pill('connected', 'good');
    else {
      broker = pill(entry.record?.lastSeenAtMs ? 'disconnected' : 'never connected', 'bad');
      if (entry.record?.lastSeenAtMs) broker.title = `last connected ${ago(entry.record.lastSeenAtMs)}`;
    }
    setCell(c[1], broker);
    const network = fleet === null ? pill('n/a') : !fleet.running ? pill('powered off', 'warn') : fleet.networkOnline ? pill('online', 'good') : pill('offline', 'bad');
    network.dataset.testid = `net-${id}`;
    setCell(c[2], network);
    if (status !== null) {
      const outcome = status.lastSyncOutcome === 'ok' ? '' : ` (${status.lastSyncOutcome})`;
      // The device sends its status only now and then; an event received since is a later sync.
      const lastSyncMs = Math.max(status.lastSyncTs, entry.lastEventAtMs ?? 0);
      setCell(c[3], `${ago(lastSyncMs)}${lastSyncMs > status.lastSyncTs ? '' : outcome}`);
      setCell(c[4], String(status.cacheDepth));
      setCell(c[5], `${status.oldestAgeSec} s`);
      setCell(c[6], String(status.drops));
      setCell(c[7], String(status.duplicates));
      setCell(c[8], String(status.conflicts));
    } else {
      setCell(c[3], 'no status yet');
      for (let i = 4; i <= 8; i++) setCell(c[i], '-');
    }
    c[4].dataset.testid = `cache-${id}`;
    setCell(c[9], fleet ? `${bytes(fleet.bytesSent)} / ${bytes(fleet.bytesReceived)}` : '-');
    setCell(c[10], fleet ? (fleet.projectedBytesPerMonth === null ? 'measuring' : bytes(fleet.projectedBytesPerMonth)) : '-');
    row.network.classList.toggle('hidden', fleet === null);
    row.power.classList.toggle('hidden', fleet === null);
    row.press.classList.toggle('hidden', fleet === null);
    row.none.classList.toggle('hidden', fleet !== null);
    if (fleet !== null) {
      row.network.textContent = fleet.networkOnline ? 'Go offline' : 'Go online';
      if (!row.press.dataset.busy) row.press.disabled = !fleet.buttonAvailable || !fleet.running;
    }
    if (row.tr.parentNode !== tbody || tbody.children[ids.indexOf(id)] !== row.tr) tbody.insertBefore(row.tr, tbody.children[ids.indexOf(id)] ?? null);
  }
  for (const [id, row] of fleetRows) {
    if (!view.devices.has(id)) {
      row.tr.remove();
      fleetRows.delete(id);
    }
  }
  const fleetNote = view.hasFleet ? '' : ' · controls need `npm start`';
  $('totals').textContent = `${view.devices.size} device(s), ${connected} connected${fleetNote}`;
}

async function control(b, deviceId, action, body) {
  b.disabled = true;
  b.dataset.busy = '1';
  try {
    const { body: answer } = await api(`/fleet/devices/${encodeURIComponent(deviceId)}/${action}`, { method: 'POST', body: body ?? {} });
    if (answer.device) deviceEntry(deviceId).fleet = answer.device;
    renderFleet();
    if (deviceId === view.selected) renderHardware();
  } catch (error) {
    alert(`${action}: ${error.message}`);
  } finally {
    b.disabled = false;
    delete b.dataset.busy;
  }
}

async function select(deviceId) {
  view.selected = deviceId;
  renderFleet();
  await renderDetail();
}

async function renderDetail() {
  const id = view.selected;
  $('detail').classList.toggle('hidden', id === null);
  if (id === null) return;
  $('detail-id').textContent = id;
  const entry = deviceEntry(id);
  renderBadges();
  renderState();
  renderHardware();
  if (!entry.eventsLoaded) await loadRecentEvents(id).catch(() => undefined);
  renderCharts();
  renderEvents();
  await Promise.all([renderMessages(), renderRpc()]).catch(() => undefined);
}

function renderBadges() {
  const entry = deviceEntry(view.selected);
  const firmware = entry.state?.entries.find((e) => e.key === 'firmware')?.reportedValue;
  const connection = entry.record?.connected ? pill('connected', 'good') : pill('not connected', 'bad');
  connection.dataset.testid = 'detail-connection';
  $('detail-badges').replaceChildren(connection, pill(`firmware ${firmware ?? '?'}`), pill(`desired v${entry.state?.desiredVersion ?? '?'}`));
}

function renderState() {
  const id = view.selected;
  const entry = deviceEntry(id);
  const tbody = $('state').querySelector('tbody');
  const entries = [...(entry.state?.entries ?? [])];
  for (const key of suggestedDesiredKeys) {
    if (!entries.some((e) => e.key === key)) entries.push({ key, reportedValue: null, reportedVersion: null, desiredValue: null, desiredVersion: null, placeholder: true });
  }
  // Keep what the user is typing: rebuild only rows whose content changed.
  const focused = document.activeElement?.dataset?.key;
  const rows = [];
  for (const e of entries.sort((a, b) => a.key.localeCompare(b.key))) {
    const existing = tbody.querySelector(`tr[data-key="${CSS.escape(e.key)}"]`);
    const signature = JSON.stringify([e.reportedValue, e.reportedVersion, e.desiredValue, e.desiredVersion]);
    if (existing && (existing.dataset.signature === signature || focused === e.key)) {
      rows.push(existing);
      continue;
    }
    const tr = document.createElement('tr');
    tr.dataset.key = e.key;
    tr.dataset.testid = `state-${e.key}`;
    tr.dataset.signature = signature;
    if (existing) tr.classList.add('changed');
    tr.append(cell(e.key));
    const reported = e.key === 'status' && e.reportedValue ? `${e.reportedValue.lastSyncOutcome}, cache ${e.reportedValue.cacheDepth}, uptime ${e.reportedValue.uptimeSec} s` : text(e.reportedValue);
    const reportedCell = cell(reported);
    reportedCell.dataset.testid = `reported-${e.key}`;
    tr.append(reportedCell, cell(e.reportedVersion === null ? '' : String(e.key === 'status' ? e.reportedVersion % 4294967296 : e.reportedVersion), 'num muted'));
    const desiredCell = cell(e.desiredVersion === null ? '' : text(e.desiredValue));
    desiredCell.dataset.testid = `desired-${e.key}`;
    tr.append(desiredCell, cell(e.desiredVersion === null ? '' : String(e.desiredVersion), 'num muted'));
    if (e.desiredVersion !== null || e.placeholder) {
      const form = document.createElement('form');
      form.className = 'controls';
      const input = document.createElement('input');
      input.size = 8;
      input.dataset.key = e.key;
      input.dataset.testid = `edit-${e.key}`;
      input.placeholder = e.desiredVersion === null ? 'not set' : text(e.desiredValue);
      const set = document.createElement('button');
      set.type = 'submit';
      set.textContent = 'Set';
      set.dataset.testid = `set-${e.key}`;
      form.append(input, set);
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        void setDesired(e.key, input.value).then((ok) => {
          if (ok) input.value = '';
        });
      });
      tr.append(cell(form));
    } else {
      tr.append(cell(e.key === 'status' ? 'device-status events' : 'device-owned', 'muted small'));
    }
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
}

function parseValue(raw) {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** PATCH with If-Match: the version the user looked at; a 409 means someone else changed it first. */
async function setDesired(key, raw) {
  const id = view.selected;
  const note = $('state-note');
  if (key.trim() === '' || raw.trim() === '') {
    note.textContent = 'Give a key and a value.';
    return false;
  }
  const entry = deviceEntry(id);
  const version = entry.state?.desiredVersion ?? 0;
  try {
    const { body } = await api(`/api/devices/${encodeURIComponent(id)}/state/desired`, {
      method: 'PATCH',
      headers: { 'if-match': `"${version}"` },
      body: { [key.trim()]: parseValue(raw.trim()) },
    });
    note.textContent = `Desired version ${body.desiredVersion}: ${key} = ${raw}. The device applies it at its next sync.`;
    await refreshState(id);
    return true;
  } catch (error) {
    if (error.status === 409) {
      note.textContent = `Not applied: the desired state moved on to version ${error.body?.error?.desiredVersion ?? '?'} meanwhile. It is reloaded; check it and set again.`;
      await refreshState(id);
    } else {
      note.textContent = `Not applied: ${error.message}`;
    }
    return false;
  }
}

function renderHardware() {
  const entry = deviceEntry(view.selected);
  const fleet = entry.fleet;
  const facts = $('hardware');
  const rows = [];
  const add = (label, value, testId) => {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value;
    if (testId) dd.dataset.testid = testId;
    rows.push(dt, dd);
  };
  if (fleet === null) {
    add('Runtime', 'not in this process (a real board, or a fleet elsewhere)');
  } else {
    add('Runtime', fleet.runtime === 'sandbox' ? 'Espruino sandbox (dist/firmware.js)' : 'real Espruino interpreter');
    add('Power', fleet.running ? `on, boot ${fleet.boots}` : 'off', 'hw-power');
    add('Network', fleet.networkOnline ? 'online' : 'offline (events are cached on the device)', 'hw-network');
    const led = document.createElement('span');
    led.innerHTML = '<span class="led"></span><span></span>';
    led.firstChild.classList.toggle('on', fleet.led === true);
    led.lastChild.textContent = fleet.led === null ? 'unknown' : fleet.led ? 'on' : 'off';
    add('LED (device says)', led, 'hw-led');
    add('Report interval (device says)', fleet.reportIntervalSec === null ? 'not said since boot' : `${fleet.reportIntervalSec} s`, 'hw-interval');
    add('On the wire', `${bytes(fleet.bytesSent)} sent, ${bytes(fleet.bytesReceived)} received`);
    add('Projected per month', fleet.projectedBytesPerMonth === null ? 'measuring (30 s)' : `${bytes(fleet.projectedBytesPerMonth)} (what a cellular plan would bill)`);
  }
  facts.replaceChildren(...rows);
  const consoleBox = $('console');
  consoleBox.classList.toggle('hidden', fleet === null);
  const atBottom = consoleBox.scrollTop + consoleBox.clientHeight >= consoleBox.scrollHeight - 4;
  consoleBox.textContent = fleet === null ? '' : fleet.console.join('\n');
  if (atBottom) consoleBox.scrollTop = consoleBox.scrollHeight;
}

/** The device's own sync status is charted apart, folded away: the application's data comes first. */
const statusTemplate = 'device-status';

function renderChartGroup(holder, entry, keys, emptyText) {
  const existing = new Map([...holder.children].map((child) => [child.dataset.series, child]));
  const nodes = [];
  const nowMs = Date.now();
  for (const key of keys) {
    const series = entry.series.get(key);
    let node = existing.get(key);
    if (node === undefined) {
      node = document.createElement('div');
      node.dataset.series = key;
      node.dataset.testid = `chart-${key}`;
    }
    drawChart(node, `${series.template} · ${series.field}`, series.unit, series.points, nowMs, chartWindowMs);
    nodes.push(node);
  }
  if (nodes.length === 0 && emptyText) {
    const empty = document.createElement('p');
    empty.className = 'muted';
    empty.textContent = emptyText;
    nodes.push(empty);
  }
  holder.replaceChildren(...nodes);
}

function renderCharts() {
  const entry = deviceEntry(view.selected);
  const keys = [...entry.series.keys()].sort();
  renderChartGroup($('charts'), entry, keys.filter((key) => entry.series.get(key).template !== statusTemplate), 'No events in the last 10 minutes yet.');
  renderChartGroup($('status-charts'), entry, keys.filter((key) => entry.series.get(key).template === statusTemplate), 'No device-status events yet.');
}

function summarize(templateId, fields) {
  if (!fields || typeof fields !== 'object') return text(fields);
  const template = view.templates.get(templateId);
  return Object.entries(fields)
    .filter(([name]) => name !== 'ts')
    .map(([name, value]) => {
      const type = template?.fields.find((f) => f.name === name)?.type;
      const shown = type === 'timestamp' && typeof value === 'number' ? (value === 0 ? 'never' : clock(value)) : typeof value === 'number' ? formatNumber(value) : text(value);
      return `${name}=${shown}`;
    })
    .join(' ');
}

function renderEvents() {
  const entry = deviceEntry(view.selected);
  const list = $('events');
  const items = [];
  for (const event of entry.events.slice(-eventsShownMax).reverse()) {
    const li = document.createElement('li');
    li.dataset.ts = String(event.ts);
    li.dataset.seq = String(event.seq);
    li.dataset.template = event.templateId;
    li.innerHTML = '<span class="muted"></span> <span class="template"></span> <span class="muted"></span> <span></span>';
    li.children[0].textContent = clock(event.ts);
    li.children[1].textContent = event.templateId;
    li.children[2].textContent = `#${event.epoch}.${event.seq}`;
    li.children[3].textContent = summarize(event.templateId, event.fields);
    items.push(li);
  }
  list.replaceChildren(...items);
}

async function renderMessages() {
  const id = view.selected;
  const { body } = await api(`/api/devices/${encodeURIComponent(id)}/messages`);
  if (id !== view.selected) return;
  const rows = body.messages.slice(-20).reverse().map((message) => {
    const tr = document.createElement('tr');
    const kind = message.status === 'acked' ? 'good' : message.status === 'expired' ? 'bad' : 'warn';
    tr.append(cell(String(message.seq), 'num'), cell(text(message.body)), cell(pill(message.status, kind)), cell(clock(message.expiresAtMs)));
    return tr;
  });
  $('messages').querySelector('tbody').replaceChildren(...rows);
}

async function renderRpc() {
  const id = view.selected;
  const { body } = await api(`/api/devices/${encodeURIComponent(id)}/rpc?limit=20`);
  if (id !== view.selected) return;
  const rows = body.requests.map((request) => {
    const tr = document.createElement('tr');
    const kind = request.status === 'done' ? 'good' : request.status === 'error' || request.status === 'expired' ? 'bad' : 'warn';
    const result = request.result && typeof request.result === 'object' && 'body' in request.result ? request.result.body : request.result;
    tr.append(cell(clock(request.createdAtMs)), cell(request.route), cell(text(request.args)), cell(pill(request.status, kind)), cell(text(result)));
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = cell('No requests yet. Press the device\'s Button to ask the cloud for the weather.', 'muted');
    td.colSpan = 5;
    tr.append(td);
    rows.push(tr);
  }
  $('rpc').querySelector('tbody').replaceChildren(...rows);
}

// ---- Live stream -------------------------------------------------------------------------------

const pendingState = new Set();
let stateTimer = null;

function scheduleState(deviceId) {
  pendingState.add(deviceId);
  if (stateTimer !== null) return;
  stateTimer = setTimeout(() => {
    stateTimer = null;
    const ids = [...pendingState];
    pendingState.clear();
    for (const id of ids) void refreshState(id);
  }, 150);
}

function openStream() {
  view.stream?.close();
  const stream = new EventSource(`/api/events/stream?access_token=${encodeURIComponent(view.token)}`);
  view.stream = stream;
  const live = $('live');
  stream.onopen = () => {
    live.textContent = 'live stream: connected';
    live.className = 'pill good';
  };
  stream.onerror = () => {
    live.textContent = 'live stream: reconnecting';
    live.className = 'pill bad';
  };
  stream.addEventListener('event', (message) => {
    const update = JSON.parse(message.data);
    deviceEntry(update.deviceId).lastEventAtMs = Date.now();
    if (addEvent(update.deviceId, update) && update.deviceId === view.selected) {
      renderEvents();
      renderCharts();
    }
  });
  for (const type of ['reported', 'desired', 'connection']) {
    stream.addEventListener(type, (message) => {
      const update = JSON.parse(message.data);
      if (type === 'connection') {
        const record = deviceEntry(update.deviceId).record;
        if (record) record.connected = update.connected;
        renderFleet();
        if (update.deviceId === view.selected) renderBadges();
      }
      scheduleState(update.deviceId);
    });
  }
  for (const type of ['message-queued', 'message-expired']) {
    stream.addEventListener(type, (message) => {
      if (JSON.parse(message.data).deviceId === view.selected) void renderMessages().catch(() => undefined);
    });
  }
}

// ---- Start -------------------------------------------------------------------------------------

function showLogin(error) {
  view.stream?.close();
  $('main').classList.add('hidden');
  $('login').classList.remove('hidden');
  $('login-error').textContent = error ?? '';
}

async function startWithToken(token) {
  view.token = token;
  sessionStorage.setItem('tandem-admin-token', token);
  $('login').classList.add('hidden');
  $('main').classList.remove('hidden');
  try {
    // The first call tells whether the token is good; only then open the stream.
    await loadTemplates();
    openStream();
    await refreshFleet();
  } catch (error) {
    if (error.status !== 401) showLogin(`Cannot reach the cloud: ${error.message}`);
  }
}

let ticking = false;
setInterval(() => {
  if (view.token === null || ticking || $('main').classList.contains('hidden')) return;
  ticking = true;
  refreshFleet()
    .catch(() => undefined)
    .finally(() => {
      ticking = false;
    });
}, refreshMs);

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  void startWithToken($('token').value.trim());
});

$('desired-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void setDesired($('desired-key').value, $('desired-value').value).then((ok) => {
    if (ok) $('desired-value').value = '';
  });
});

$('message-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const id = view.selected;
  const ttlSec = Number($('message-ttl').value) || 600;
  api(`/api/devices/${encodeURIComponent(id)}/messages`, { method: 'POST', body: { body: parseValue($('message-body').value.trim()), ttlSec } })
    .then(() => {
      $('message-body').value = '';
      return renderMessages();
    })
    .catch((error) => alert(`queue: ${error.message}`));
});

// The token comes in the URL fragment (never sent to the server) and is then kept for the tab only.
const fragment = new URLSearchParams(location.hash.slice(1));
const fromFragment = fragment.get('token');
if (fromFragment) history.replaceState(null, '', location.pathname);
const token = fromFragment ?? sessionStorage.getItem('tandem-admin-token');
if (token) void startWithToken(token);
else showLogin();
