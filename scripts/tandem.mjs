#!/usr/bin/env node
// The `tandem` command: loads TypeScript through tsx and hands over to scripts/tandem.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./tandem.ts');
process.exitCode = await main(process.argv.slice(2));
