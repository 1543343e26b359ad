// Builds a busbar sink component from sink.js with componentize-js's JavaScript API.
import { writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { componentize } from '@bytecodealliance/componentize-js';

// A scaffolded project carries its own copy of the WIT files; inside the busbar repository, use the real ones.
const witPath = resolve(existsSync('wit') ? 'wit' : '../../../wit');
const out = process.env.OUT ?? 'js_sink.wasm';

const { component } = await componentize({
  sourcePath: resolve('sink.js'),
  witPath,
  worldName: 'busbar:connector/sink',
  // stdio lets console.log reach busbar's log; the rest (clocks, random, http for fetch) is what sink.js uses.
});
await writeFile(out, component);
console.log(`built ${resolve(out)} (${component.length} bytes)`);
