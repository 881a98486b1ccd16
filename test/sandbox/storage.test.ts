// EspruinoStorage follows Espruino's Storage rules (../shared/espruino/PROFILE.md, Storage), keeps
// its bytes in an image file, and loses power when told to.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EspruinoStorage, PowerLossError, storageFileChunkBytes } from '../../hal-mocks/espruino-sandbox/storage.ts';
import { temporaryDir } from './helpers.ts';

const pageBytes = 4096;

function small(pageCount = 8): EspruinoStorage {
  return new EspruinoStorage({ pageBytes, pageCount });
}

function errorOf(body: () => unknown): string {
  try {
    body();
  } catch (error) {
    return (error as Error).message;
  }
  return '(no error)';
}

describe('Storage files: preallocation and NOR writes', () => {
  it('preallocates a file with write(name, data, 0, size) and fills it later at offsets', () => {
    const storage = small();
    expect(storage.write('a', 'Hello', 0, 14)).toBe(true);
    expect(storage.read('a')).toBe('Hello' + '\xff'.repeat(9));
    expect(storage.write('a', ' ', 5)).toBe(true);
    expect(storage.write('a', 'World!!!', 6)).toBe(true);
    expect(storage.read('a')).toBe('Hello World!!!');
    expect(storage.read('a', 6, 5)).toBe('World');
  });

  it('refuses to write over written bytes, even with identical data', () => {
    const storage = small();
    storage.write('a', 'Hello', 0, 14);
    expect(errorOf(() => storage.write('a', 'J', 0 + 1))).toBe('File already written with different data');
    expect(errorOf(() => storage.write('a', 'ello', 1))).toBe('File already written with different data');
    expect(storage.read('a', 0, 5)).toBe('Hello');
  });

  it('refuses data past the preallocated size and offsets into a missing file', () => {
    const storage = small();
    storage.write('a', 'ab', 0, 4);
    expect(errorOf(() => storage.write('a', 'xyz', 2))).toBe('Too much data for file size');
    expect(errorOf(() => storage.write('missing', 'x', 3))).toBe('Unable to find or create file');
    expect(errorOf(() => storage.write('empty', ''))).toBe("Can't create zero length file");
  });

  it('stores bytes 0..255 from a string, an array and a Uint8Array alike', () => {
    const storage = small();
    const all = new Uint8Array(256).map((_, index) => index);
    const text = String.fromCharCode(...all);
    storage.write('s', text);
    storage.write('u', all);
    storage.write('n', [...all]);
    expect(storage.read('s')).toBe(text);
    expect(storage.read('u')).toBe(text);
    expect(storage.read('n')).toBe(text);
    expect(new Uint8Array(storage.readArrayBuffer('u')!)).toEqual(all);
  });

  it('writes objects as JSON and reads them back; bad JSON is an exception unless noExceptions', () => {
    const storage = small();
    storage.write('o', { a: 1, b: 'x' });
    expect(storage.readJSON('o')).toEqual({ a: 1, b: 'x' });
    storage.writeJSON('j', [1, 2, 3]);
    expect(storage.read('j')).toBe('[1,2,3]');
    storage.write('bad', '{nope');
    expect(() => storage.readJSON('bad')).toThrow();
    expect(storage.readJSON('bad', true)).toBeUndefined();
    expect(storage.readJSON('missing')).toBeUndefined();
    expect(storage.read('missing')).toBeUndefined();
  });
});

describe('Storage JSON dialects (checked against the Linux build)', () => {
  it('writeJSON writes compact JS that only readJSON reads back', () => {
    const storage = small();
    const value = { a: 1, 'b c': 'x\ny\xff\x01z', list: [true, null, 1.5], _$: {}, if: 2, '1a': 3, skipped: undefined };
    storage.writeJSON('t', value);
    expect(storage.read('t')).toBe('{a:1,"b c":"x\\ny\\xFF\\1z",list:[true,null,1.5],"_$":{},if:2,"1a":3}');
    expect(() => JSON.parse(storage.read('t')!)).toThrow();
    expect(storage.readJSON('t')).toEqual({ a: 1, 'b c': 'x\ny\xff\x01z', list: [true, null, 1.5], _$: {}, if: 2, '1a': 3 });
  });

  it('write(name, object) writes standard JSON with \\u escapes', () => {
    const storage = small();
    storage.write('o', { a: 'é\x01' });
    expect(storage.read('o')).toBe('{"a":"\\u00E9\\u0001"}');
  });

  it('readJSON is liberal: unquoted keys, single quotes, \\x and octal escapes, trailing commas, junk after', () => {
    const storage = small();
    storage.write('u', '{a:1,"b":"\\x41\\1\\v",c:[1,2,],d:\'sq\'}');
    expect(storage.readJSON('u')).toEqual({ a: 1, b: 'A\x01\v', c: [1, 2], d: 'sq' });
    storage.write('v', '{"a":1}junk');
    expect(storage.readJSON('v')).toEqual({ a: 1 });
  });
});

describe('Storage layout: headers, names, copies, compaction', () => {
  it('takes a 32-byte header per file, data aligned to 4 bytes', () => {
    const storage = small(4);
    const total = storage.getFree();
    expect(total).toBe(4 * pageBytes);
    storage.write('f', '0123456789');
    expect(storage.getFree()).toBe(total - 32 - 12);
  });

  it('cuts names to 28 characters without warning', () => {
    const storage = small();
    const long = 'abcdefghijklmnopqrstuvwxyz0123456789';
    storage.write(long, 'v');
    expect(storage.list()).toEqual([long.slice(0, 28)]);
    expect(storage.read(long.slice(0, 28))).toBe('v');
    expect(storage.read(long.slice(0, 28) + 'other')).toBe('v');
  });

  it('writing at offset 0 makes a new copy and leaves the old one as trash until compact()', () => {
    const storage = small(4);
    storage.write('f', 'first');
    const afterFirst = storage.getFree();
    storage.write('f', 'second');
    expect(storage.read('f')).toBe('second');
    expect(storage.getFree()).toBe(afterFirst - 32 - 8);
    // Identical content at offset 0 is not copied again.
    storage.write('f', 'second');
    expect(storage.getFree()).toBe(afterFirst - 32 - 8);
    storage.compact();
    expect(storage.getFree()).toBe(4 * pageBytes - 32 - 8);
    expect(storage.read('f')).toBe('second');
    expect(storage.pageEraseCounts()[0]).toBe(1);
  });

  it('erase() removes a file; list() filters by pattern and StorageFile kind', () => {
    const storage = small();
    storage.write('one', '1');
    storage.write('two', '2');
    storage.open('log', 'w').write('x');
    expect(storage.list()).toEqual(['one', 'two', 'log\x01']);
    expect(storage.list(/^t/)).toEqual(['two']);
    expect(storage.list(undefined, { sf: true })).toEqual(['log']);
    expect(storage.list(undefined, { sf: false })).toEqual(['one', 'two']);
    storage.erase('one');
    expect(storage.read('one')).toBeUndefined();
    expect(storage.list(undefined, { sf: false })).toEqual(['two']);
  });

  it('compacts by itself when a new copy no longer fits, keeping every live file', () => {
    const storage = small(4);
    storage.write('keep', 'k'.repeat(100));
    for (let round = 0; round < 40; round++) storage.write('counter', `${round}`.padEnd(900, '.'));
    expect(storage.read('keep')).toBe('k'.repeat(100));
    expect(storage.read('counter')!.startsWith('39.')).toBe(true);
    expect(Math.min(...storage.pageEraseCounts())).toBeGreaterThan(0);
  });

  it('fails with "Unable to find or create file" when even compaction cannot make room', () => {
    const storage = small(2);
    storage.write('big', 'x'.repeat(6000));
    expect(errorOf(() => storage.write('more', 'y'.repeat(3000)))).toBe('Unable to find or create file');
    expect(storage.read('big')!.length).toBe(6000);
  });
});

describe('StorageFile', () => {
  it('appends across 4064-byte chunks and reads back by length and by line', () => {
    const storage = small();
    expect(storageFileChunkBytes(pageBytes)).toBe(4064);
    const file = storage.open('log', 'a');
    const line = 'x'.repeat(99) + '\n';
    for (let i = 0; i < 50; i++) file.write(line);
    // Only the first chunk is listed, as on the device.
    expect(storage.list()).toEqual(['log\x01']);
    expect(storage.read('log\x02')).toBeDefined();
    const reader = storage.open('log', 'r');
    expect(reader.getLength()).toBe(5000);
    expect(reader.readLine()).toBe(line);
    expect(reader.read(150)).toBe(line + 'x'.repeat(50));
    let rest = '';
    for (let chunk = reader.read(1000); chunk !== undefined; chunk = reader.read(1000)) rest += chunk;
    expect(rest.length).toBe(5000 - 250);
    // Appending again continues where the file ends.
    storage.open('log', 'a').write('tail\n');
    expect(storage.open('log', 'r').getLength()).toBe(5005);
  });

  it('cannot hold the byte 0xFF: it reads as the end of the file', () => {
    const storage = small();
    storage.open('f', 'w').write('ab\xffcd');
    expect(storage.open('f', 'r').read(10)).toBe('ab');
    expect(storage.open('f', 'r').getLength()).toBe(2);
  });

  it('"w" starts the file again; erase() removes every chunk; modes are enforced', () => {
    const storage = small();
    storage.open('f', 'w').write('old');
    storage.open('f', 'w').write('new');
    expect(storage.open('f', 'r').read(10)).toBe('new');
    expect(errorOf(() => storage.open('f', 'r').write('x'))).toBe("Can't write in this mode");
    expect(errorOf(() => storage.open('f', 'a').read(1))).toBe("Can't read in this mode");
    expect(errorOf(() => storage.open('f', 'x'))).toBe('Invalid mode "x"');
    storage.open('f', 'r').erase();
    expect(storage.list()).toEqual([]);
  });
});

describe('Flash image and power loss', () => {
  it('keeps the files in the image file across a restart', () => {
    const imagePath = join(temporaryDir('storage'), 'device.flash');
    const first = new EspruinoStorage({ pageBytes, pageCount: 8, imagePath });
    first.write('boots', '1');
    first.open('log', 'a').write('hello\n');
    first.close();
    expect(existsSync(imagePath)).toBe(true);
    expect(statSync(imagePath).size).toBe(8 * pageBytes);
    const second = new EspruinoStorage({ pageBytes, pageCount: 8, imagePath });
    expect(second.read('boots')).toBe('1');
    expect(second.open('log', 'r').readLine()).toBe('hello\n');
    second.close();
    expect(() => new EspruinoStorage({ pageBytes, pageCount: 4, imagePath })).toThrow(/expected 16384/);
  });

  it('counts flash operations and loses power at the chosen one; the device is then dead', () => {
    const storage = small();
    storage.write('a', 'x');
    expect(storage.flashOperationCount).toBe(2); // header, data
    storage.cutPowerAfter(1);
    expect(() => storage.write('b', 'y')).toThrow(PowerLossError);
    expect(storage.isPoweredOff).toBe(true);
    expect(() => storage.read('a')).toThrow(PowerLossError);
    // Only the header made it: after power-on the file is there but unwritten.
    const after = new EspruinoStorage({ pageBytes, pageCount: 8, image: storage.imageBytes() });
    expect(after.read('b')).toBe('\xff');
    expect(after.read('a')).toBe('x');
  });

  it('replacing a file is not atomic: a cut after the delete mark loses it', () => {
    const storage = small();
    storage.write('config', 'v1');
    storage.cutPowerAfter(1); // the old copy is marked deleted, then power goes
    expect(() => storage.write('config', 'v2')).toThrow(PowerLossError);
    const after = new EspruinoStorage({ pageBytes, pageCount: 8, image: storage.imageBytes() });
    expect(after.read('config')).toBeUndefined();
  });

  it('a cut during compaction, between a page erase and its rewrite, loses files', () => {
    const storage = small(4);
    storage.write('trash', 't'.repeat(500));
    storage.write('live', 'L'.repeat(500));
    storage.erase('trash');
    storage.cutPowerAfter(1); // erase of page 0 happens, its rewrite from RAM does not
    expect(() => storage.compact()).toThrow(PowerLossError);
    const after = new EspruinoStorage({ pageBytes, pageCount: 4, image: storage.imageBytes() });
    expect(after.read('live')).toBeUndefined();
    expect(after.list()).toEqual([]);
  });

  it('a torn program writes only its first bytes', () => {
    const storage = small();
    storage.write('f', 'abcd', 0, 8);
    storage.cutPowerAfter(0, 2);
    expect(() => storage.write('f', 'efgh', 4)).toThrow(PowerLossError);
    const after = new EspruinoStorage({ pageBytes, pageCount: 8, image: storage.imageBytes() });
    expect(after.read('f')).toBe('abcdef\xff\xff');
  });

  it('counts page erases for wear figures', () => {
    const storage = small(2);
    storage.eraseAll();
    storage.eraseAll();
    expect(storage.pageEraseCounts()).toEqual([2, 2]);
  });
});
