// CRC-32 agreement with Espruino's E.CRC32 [WIRE-5] and the template rules [WIRE-20..WIRE-23]:
// hashes are stable, every template file is valid, malformed definitions are refused by name.
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, crc32OfByteString } from '../../firmware/protocol/crc32.ts';
import { createFrameDecoder, createFrameEncoder, frameDecodeBegin, frameDecodeNext, frameEncodeAppend, frameEncodeBegin, frameEncodeFinish } from '../../firmware/protocol/frame.ts';
import { checkTemplateDefinition, checkTemplates } from '../../firmware/protocol/template-check.ts';
import { canonicalNumber, createTemplateRegistry, defineTemplate, templateHashHex, type TemplateDefinition, type WireValue } from '../../firmware/protocol/template.ts';
import { allTemplates, createDefaultRegistry, telemetryTemplate } from '../../firmware/protocol/templates/index.ts';

const bytesOf = (text: string) => new Uint8Array(Buffer.from(text, 'latin1'));

describe('CRC-32 [WIRE-5]', () => {
  it('matches what E.CRC32 printed on Espruino 2v29 (shared/espruino/probes.json)', () => {
    expect(crc32(bytesOf('hello'), 0, 5)).toBe(907060870);
    expect(crc32(new Uint8Array([1, 2, 3]), 0, 3)).toBe(1438416925);
    expect(crc32OfByteString('hello')).toBe(907060870);
  });

  it('matches zlib over random buffers and sub-ranges', () => {
    const bytes = new Uint8Array(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    for (const [offset, length] of [[0, 0], [0, 4096], [7, 1000], [4000, 96]]) {
      expect(crc32(bytes, offset, length)).toBe(zlibCrc32(bytes.subarray(offset, offset + length)));
    }
  });

  it('an injected CRC (as the device passes E.CRC32, signed or not) makes frames the cloud accepts, and back', () => {
    // A bitwise CRC returning a signed 32-bit number, as a native function might: it must agree.
    const injected = (bytes: Uint8Array, offset: number, length: number): number => {
      let c = -1;
      for (let i = offset; i < offset + length; i++) {
        c ^= bytes[i];
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
      }
      return (c ^ -1) | 0;
    };
    const out = new Uint8Array(200);
    const device = createFrameEncoder(injected);
    frameEncodeBegin(device, telemetryTemplate, out, 0, out.length, 0);
    expect(frameEncodeAppend(device, [1764201600000, 21.5, 40, 3900])).toBe(0);
    const length = frameEncodeFinish(device);
    const cloud = createFrameDecoder(createDefaultRegistry());
    expect(frameDecodeBegin(cloud, out, 0, length)).toBe(0);
    const values: WireValue[] = [];
    expect(frameDecodeNext(cloud, values)).toBe(0);
    expect(values).toEqual([1764201600000, 21.5, 40, 3900]);
    const deviceSide = createFrameDecoder(createDefaultRegistry(), injected);
    expect(frameDecodeBegin(deviceSide, out, 0, length)).toBe(0);
  });
});

describe('templates [WIRE-20][WIRE-22][WIRE-23]', () => {
  it('every template file is valid, with unique ids, names and hashes', () => {
    expect(checkTemplates(allTemplates())).toBeNull();
  });

  it('hashes are stable: changing them breaks every deployed device, so this list changes on purpose only [WIRE-22]', () => {
    expect(Object.fromEntries(allTemplates().map((t) => [t.name, templateHashHex(t.hash)]))).toEqual({
      telemetry: '235ac317',
      'power-meter': '57899567',
      'device-status': '34c723a9',
      'events-dropped': '818a8e27',
    });
    expect(telemetryTemplate.canonical).toBe(
      'tandem-template/1;telemetry;1;1;ts:timestamp:1000;temp:fixed:1e-1:-40:125;hum:uint:0:100;batt:uint:0:6000',
    );
  });

  it('the hash covers what changes bytes, not descriptions or units [WIRE-22]', () => {
    const base: TemplateDefinition = { name: 'x', id: 9, version: 1, fields: [{ name: 'a', type: 'fixed', resolution: 0.5, min: 0, max: 10 }] };
    const hash = defineTemplate(base).hash;
    expect(defineTemplate({ ...base, description: 'other', fields: [{ ...base.fields[0], unit: 'V', description: 'd' }] }).hash).toBe(hash);
    expect(defineTemplate({ ...base, fields: [{ ...base.fields[0], resolution: 0.25 }] }).hash).not.toBe(hash);
    expect(defineTemplate({ ...base, fields: [{ ...base.fields[0], max: 11 }] }).hash).not.toBe(hash);
    expect(defineTemplate({ ...base, version: 2 }).hash).not.toBe(hash);
    expect(defineTemplate({ ...base, fields: [{ ...base.fields[0], name: 'b' }] }).hash).not.toBe(hash);
  });

  it('prints canonical numbers without engine-specific float formatting [WIRE-22]', () => {
    expect(canonicalNumber(0.1)).toBe('1e-1');
    expect(canonicalNumber(-40)).toBe('-40');
    expect(canonicalNumber(0.001)).toBe('1e-3');
    expect(canonicalNumber(2.5)).toBe('25e-1');
    expect(canonicalNumber(4294967295)).toBe('4294967295');
  });

  it('refuses malformed definitions with a message naming template and field [WIRE-20]', () => {
    const cases: [TemplateDefinition, RegExp][] = [
      [{ name: 'Bad Name', id: 1, version: 1, fields: [{ name: 'a', type: 'bool' }] }, /template Bad Name: name must be/],
      [{ name: 'x', id: 0, version: 1, fields: [{ name: 'a', type: 'bool' }] }, /id must be 1\.\.255/],
      [{ name: 'x', id: 1, version: 1, fields: [] }, /needs 1 to 32 fields/],
      [{ name: 'x', id: 1, version: 1, fields: [{ name: 'a', type: 'fixed', min: 0, max: 1 }] }, /field a: a fixed field needs a resolution/],
      [{ name: 'x', id: 1, version: 1, fields: [{ name: 'a', type: 'uint', min: -1, max: 1 }] }, /field a: a uint min must be >= 0/],
      [{ name: 'x', id: 1, version: 1, fields: [{ name: 'a', type: 'enum', values: ['on', 'on'] }] }, /enum value on repeats/],
      [{ name: 'x', id: 1, version: 1, fields: [{ name: 'a', type: 'string', maxLength: 300 }] }, /maxLength 1\.\.255/],
      [{ name: 'x', id: 1, version: 1, fields: [{ name: 'a', type: 'bool' }, { name: 'a', type: 'bool' }] }, /field a: name repeats/],
      [{ name: 'x', id: 1, version: 1, fields: [{ name: 'a b', type: 'bool' }] }, /field a b: name must be/],
      [{ name: 'x', id: 1, version: 1, fields: [{ name: 'a', type: 'decimal' as 'bool' }] }, /unknown type decimal/],
    ];
    for (const [definition, message] of cases) expect(checkTemplateDefinition(definition)).toMatch(message);
  });

  it('a registry refuses the same template twice; lookups find by hash [WIRE-23]', () => {
    expect(() => createTemplateRegistry([telemetryTemplate, telemetryTemplate])).toThrow(/registered twice/);
    const registry = createDefaultRegistry();
    for (const template of allTemplates()) expect(registry.templates.find((t) => t.hash === template.hash)).toBe(template);
  });
});
