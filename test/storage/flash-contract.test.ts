// Runs the Flash contract against the flash simulator and against the Storage-backed Flash over
// the sandbox's Espruino Storage emulation [FLASH-1] [FLASH-2].
import { FlashSimulator } from '../../hal-mocks/flash-simulator.ts';
import { EspruinoStorage } from '../../hal-mocks/espruino-sandbox/storage.ts';
import { StorageFlash, storageSectorSizeFor } from '../../firmware/hal/espruino/storage-flash.ts';
import { flashContract } from './flash-contract.ts';

flashContract('FlashSimulator', () => {
  const flash = new FlashSimulator({ sectorCount: 4, sectorSize: 4096 });
  return { flash, reopen: () => flash };
});

flashContract('StorageFlash over EspruinoStorage', () => {
  // 4 sectors need 4 pages; the spare pages leave Storage room for the copies an erase makes.
  let storage = new EspruinoStorage({ pageBytes: 4096, pageCount: 8 });
  const sectorSize = storageSectorSizeFor(4096);
  return {
    flash: new StorageFlash(storage, 'tst', sectorSize, 4),
    reopen: () => {
      storage = new EspruinoStorage({ pageBytes: 4096, pageCount: 8, image: storage.imageBytes() });
      return new StorageFlash(storage, 'tst', sectorSize, 4);
    },
  };
});
